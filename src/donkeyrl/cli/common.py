"""Helpers shared by the subcommands: errors, argument types that name the bad value."""

from __future__ import annotations

import argparse


class CLIError(Exception):
    """A user-facing error: printed as one line, no traceback, non-zero exit."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _number_type(parse: type, minimum: float, strict: bool) -> argparse._ActionType:
    """An argparse type: a finite ``parse`` (int or float) above ``minimum`` (``>`` if strict)."""
    noun = "integer" if parse is int else "number"
    bound = f"{'>' if strict else '>='} {minimum:g}"

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an' if parse is int else 'a'} {noun}") from None
        ok = value > minimum if strict else value >= minimum
        if not ok or value == float("inf"):  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"{text} must be {'' if parse is int else 'a finite number '}{bound}")
        return value

    convert.__name__ = f"{parse.__name__} {bound}"
    return convert


#: argparse types naming the bad value: integers >= 1 / >= 0, finite floats > 0 / >= 0.
positive_int = _number_type(int, 1, strict=False)
non_negative_int = _number_type(int, 0, strict=False)
positive_float = _number_type(float, 0, strict=True)
non_negative_float = _number_type(float, 0, strict=False)


def add_simulator_arguments(group: argparse._ActionsContainer, *, defaults: bool = True,
                            unset: str = "the model's own setting") -> None:
    """``--sim/--host/--port/--sim-path``: which simulator runs the car (shared by the commands).

    With ``defaults=False`` every option defaults to None, meaning "keep what the model or trial
    was configured with" (``evaluate``, ``research``).
    """
    keep = f" (default: {unset})"
    group.add_argument("--sim", choices=("embedded", "donkey"), default="embedded" if defaults else None,
                       help="simulator: embedded (built in) or donkey (the real DonkeyCar simulator over "
                       "TCP)" + (" (default: embedded)" if defaults else keep))
    group.add_argument("--host", default="127.0.0.1" if defaults else None,
                       help="real simulator host" + (" (default: 127.0.0.1)" if defaults else keep))
    group.add_argument("--port", type=positive_int, default=9091 if defaults else None,
                       help="real simulator port" + (" (default: 9091)" if defaults else keep))
    group.add_argument("--sim-path", default=None,
                       help="real simulator executable to launch in its own process group (on a free "
                       "port if --port is taken) and stop afterwards")


def simulator_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The simulator options given on the command line, as TrialConfig field -> value."""
    return {k: getattr(args, k) for k in ("sim", "host", "port", "sim_path") if getattr(args, k) is not None}
