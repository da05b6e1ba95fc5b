"""``python -m ntire_t2iqa`` runs the command line."""

from .cli import main

main()
