"""The ``donkeyrl`` command line. The CLI owns the console: library code only logs.

Each subcommand lives in its own module exposing ``register(subparsers)``; that keeps this file a
dispatcher and lets each capability own its options (a small improvement over one big cli.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from donkeyrl import __version__
from donkeyrl.cli.common import CLIError

#: Subcommand modules, in the order ``--help`` lists them. A module that is missing (a capability
#: not built yet) is skipped rather than breaking the whole command.
COMMANDS = ("tracks", "drive", "train", "evaluate", "research", "report", "export", "sim")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="donkeyrl",
        description="Train reinforcement-learning agents to drive a DonkeyCar and tune them with "
        "GP+UCB autoresearch, on the built-in simulator or the real DonkeyCar simulator.",
    )
    parser.add_argument("--version", action="version", version=f"donkeyrl {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v: info, -vv: debug); default: warnings only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"donkeyrl.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"donkeyrl.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``donkeyrl`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"donkeyrl {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"donkeyrl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `donkeyrl tracks --json | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
