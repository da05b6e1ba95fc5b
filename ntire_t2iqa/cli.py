"""The ``ntire-t2iqa`` command line: a thin click layer over the library.

Exit codes: 0 success, 1 invalid submission, 2 usage error or unreadable reference/inputs.

Each command lives in its own module, imported only when that command runs (or shows its
``--help``): ``ntire-t2iqa --help`` lists the commands from :data:`COMMANDS` without
importing any of them, and no command's module imports scipy, pandas, OpenCV or torch
before the command needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from . import __version__

#: Every command: name -> (module in this package, attribute, the one-line help ``--help`` lists).
#: The one-line help is the command's own (a test checks that they agree).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "baseline": ("cli_baseline", "baseline",
                 "Reference baselines: list, train, and run them into a validated submission zip."),
    "codabench-bundle": ("cli_codalab", "codabench_bundle_command",
                         "Write a Codabench competition bundle: competition.yaml, pages, logo, scoring program, "
                         "reference data."),
    "codalab-score": ("cli_codalab", "codalab_score_command",
                      "Scoring program: INPUT_DIR/res against INPUT_DIR/ref into OUTPUT_DIR/scores.txt and "
                      "scores.json."),
    "data": ("data.cli", "data",
             "Synthetic mini-challenge, reference building, prompt-grouped folds, trivial predictors."),
    "demo": ("data.cli", "demo",
             "Run the toolkit end to end on the small synthetic challenge in OUT_DIR (default demo/)."),
    "explain": ("cli_explain", "explain_command",
                "Show where a submission loses points against a labelled split (e.g. a validation fold)."),
    "integrity": ("cli_integrity", "integrity_command",
                  "Organizers only: submission limits, label probing and teams with matching predictions."),
    "leaderboard": ("cli_rank", "leaderboard_command",
                    "Export a stored leaderboard as a table, CSV, Markdown, LaTeX, HTML or JSON."),
    "pack": ("cli_pack", "pack_command", "Write a submission zip from PREDICTIONS, only if it is valid."),
    "rank": ("cli_rank", "rank_command",
             "Score every new submission into the results store and print the leaderboard."),
    "score": ("cli_score", "score", "Score a submission against the hidden reference as the official program does."),
    "validate": ("cli_score", "validate",
                 "Check a submission zip (or unpacked folder) and report every problem with its fix."),
}


def load_command(name: str) -> click.Command:
    """The click command ``name`` of :data:`COMMANDS`, importing its module."""
    module, attribute, _ = COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported when they are used, not when the group's help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted (none of them imported)."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, its module imported now; ``None`` for an unknown name."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help's command list, from :data:`COMMANDS` (as click writes it, without importing a command)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)))
            else:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ntire-t2iqa")
def main() -> None:
    """Validate, score and rank NTIRE 2025 T2I quality assessment submissions."""


def __getattr__(name: str) -> Any:
    """The command functions by their former names here (``validate``, ``score``), imported on first use."""
    if name in ("validate", "score"):
        return load_command(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
