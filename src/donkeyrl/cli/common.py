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


def bounded(parse: type, low: float | None, high: float | None) -> argparse._ActionType:
    """An argparse type: a finite ``parse`` (int or float) in the inclusive range [low, high]."""
    from donkeyrl.rl.schema import bounds_text

    noun = "an integer" if parse is int else "a number"
    valid = "finite" if low is None and high is None else bounds_text(low, high)

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if value != value or value in (float("inf"), float("-inf")) or \
                (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} must be {noun} {valid}")
        return value

    convert.__name__ = f"{parse.__name__} {valid}"
    return convert


#: The simulator options every command shares, in order (TrialConfig field names).
SIMULATOR_OPTIONS = ("sim", "host", "port", "sim_path")


def add_simulator_arguments(group: argparse._ActionsContainer, *, defaults: bool = True,
                            unset: str = "the model's own setting") -> None:
    """``--sim/--host/--port/--sim-path``: which simulator runs the car (shared by the commands).

    Choices, bounds (``--port`` in 1..65535) and help come from the trial configuration's
    declarations (donkeyrl.rl.config.EnvConfig), like ``donkeyrl train``'s own flags.
    With ``defaults=False`` every option defaults to None, meaning "keep what the model or trial
    was configured with" (``evaluate``, ``research``).
    """
    from donkeyrl.rl.config import param_infos

    infos = param_infos()
    for name in SIMULATOR_OPTIONS:
        info = infos[name]
        kwargs: dict[str, object] = {"default": info.default if defaults else None, "dest": name}
        if info.choices is not None:
            kwargs["choices"] = info.choices
        if info.type in ("int", "float"):
            kwargs["type"] = bounded(int if info.type == "int" else float, info.low, info.high)
        if info.metavar:
            kwargs["metavar"] = info.metavar
        shown = f" (default: {info.default})" if defaults and info.default is not None else \
            "" if defaults else f" (default: {unset})"
        kwargs["help"] = info.help.rstrip(".") + shown
        group.add_argument(info.flag, **kwargs)  # type: ignore[arg-type]


def simulator_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The simulator options given on the command line, as TrialConfig field -> value."""
    return {k: getattr(args, k) for k in SIMULATOR_OPTIONS if getattr(args, k, None) is not None}
