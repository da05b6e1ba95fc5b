"""What every baseline shares: data items, training runtime, submission writing."""
