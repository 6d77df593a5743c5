"""Declared trial parameters: one field declaration gives validation, a CLI flag and its help.

Every parameter of a trial is a field of a frozen dataclass (a section of
:class:`donkeyrl.rl.config.TrialConfig` or an algorithm's parameters dataclass in
:mod:`donkeyrl.rl.algorithms`), declared with :func:`param` and documented by the docstring
written under it, CleanRL style::

    learning_rate: float = param(3e-4, low=1e-8, high=1.0, log=True)
    \"\"\"Optimizer learning rate.\"\"\"

From that single declaration this module derives the validation of a value (:func:`check_fields`,
called by every section's ``__post_init__``), the description of the parameter (:class:`ParamInfo`:
type, default, inclusive bounds, choices, help) that ``donkeyrl train`` turns into a flag and that
``donkeyrl train --print-schema`` prints for the research controller.

Why docstrings rather than ``metadata={"help": ...}``: the documentation a reader sees in the
source is the help a user sees on the command line; they cannot drift apart. A subclass that
re-declares a field with a plain default (``learning_rate: float = 1e-3``) changes only the
default: bounds and docstring are looked up along the class's MRO.

No torch / SB3 import here: the CLI builds its parser from these declarations on every start.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["param", "check_fields", "field_meta", "field_docs", "ParamInfo", "describe",
           "TYPE_NAMES", "is_keyword_value", "format_number", "bounds_text"]

#: Schema type names (``--print-schema``'s "type").
TYPE_NAMES = ("int", "float", "bool", "str", "list")

#: Where a value goes (``target`` of :func:`param`).
TARGETS = ("model", "policy", "env", "config")


def param(default: Any, *, low: float | None = None, high: float | None = None, log: bool = False,
          choices: tuple[Any, ...] | None = None, flag: str | None = None, target: str = "config",
          requires: str | None = None, keywords: tuple[str, ...] = (), metavar: str | None = None) -> Any:
    """A dataclass field carrying the parameter's bounds and where its value goes.

    ``low``/``high`` are inclusive bounds (numbers); ``log`` hints that searches should use a log
    scale; ``choices`` the only valid values; ``flag`` overrides the CLI flag (default
    ``--name-with-dashes``); ``target`` says what the value configures: ``model`` (a keyword of the
    SB3 constructor), ``policy`` (a key of SB3's ``policy_kwargs``), ``env`` (the environment
    stack) or ``config`` (the trial itself); ``requires`` names a condition under which alone the
    parameter applies (``"discrete"``: discrete actions); ``keywords`` are strings accepted besides
    numbers (``"auto"`` accepts ``auto`` and ``auto_<number>``).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    meta = {"low": low, "high": high, "log": log, "choices": choices, "flag": flag, "target": target,
            "requires": requires, "keywords": tuple(keywords), "metavar": metavar}
    return field(default=default, metadata=meta)


def field_meta(cls: type, name: str) -> Mapping[str, Any]:
    """The :func:`param` metadata of field ``name``, from the first class in the MRO declaring it."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata:
            return f.metadata
    return {}


@functools.cache
def _own_docs(cls: type) -> dict[str, str]:
    """Docstrings written under the annotated assignments of ``cls``'s own body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (frozen app): no help text, nothing breaks
        return {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body.body, body.body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and \
                isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and \
                isinstance(nxt.value.value, str):
            text = " ".join(inspect.cleandoc(nxt.value.value).split())
            docs[stmt.target.id] = text.replace("``", "")  # reST literals read as plain text in help
    return docs


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> docstring for every field of dataclass ``cls`` (inherited ones included)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            out.update(_own_docs(klass))
    return out


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_type(hint: Any) -> tuple[str, bool, bool]:
    """(schema type name, accepts None, accepts str keywords) of a field annotation."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 2 and float in rest and str in rest:
            return "float", nullable, True
        if len(rest) != 1:
            raise TypeError(f"unsupported parameter type {hint}")
        name, _, _ = _split_type(rest[0])
        return name, nullable, False
    if origin in (tuple, list):
        return "list", False, False
    if hint in (bool, int, float, str):
        return hint.__name__, False, False
    raise TypeError(f"unsupported parameter type {hint}")


def is_keyword_value(value: str, keywords: tuple[str, ...]) -> bool:
    """True for ``kw`` or ``kw_<positive number>`` with ``kw`` in ``keywords`` (SB3's ``auto_0.1``)."""
    for kw in keywords:
        if value == kw:
            return True
        if value.startswith(kw + "_"):
            try:
                number = float(value[len(kw) + 1:])
            except ValueError:
                return False
            return math.isfinite(number) and number > 0
    return False


def format_number(x: float) -> str:
    """Integers in full (a seed bound of 4294967295, not 4.29497e+09), other numbers as %g."""
    return str(x) if isinstance(x, int) else format(x, "g")


def bounds_text(low: float | None, high: float | None) -> str:
    """``in [low, high]``, ``>= low`` or ``<= high`` (inclusive bounds)."""
    if low is not None and high is not None:
        return f"in [{format_number(low)}, {format_number(high)}]"
    if low is not None:
        return f">= {format_number(low)}"
    return f"<= {format_number(high) if high is not None else 'inf'}"


def check_fields(obj: Any) -> None:
    """Validates (and normalises) every declared field of the frozen dataclass ``obj``.

    Normalises in place what JSON and argparse produce: lists -> tuples, integral numbers for
    ``int`` fields, ints -> floats for ``float`` fields. Raises ValueError naming the field, the
    bad value and what is valid.
    """
    cls: Any = type(obj)
    for f in dataclasses.fields(obj):
        meta = field_meta(cls, f.name)
        if not meta:
            continue
        kind, nullable, _ = _split_type(_hints(cls)[f.name])
        keywords = meta["keywords"]
        value = getattr(obj, f.name)
        new = _check_value(f.name, value, kind, nullable, keywords, meta)
        if new is not value:
            object.__setattr__(obj, f.name, new)


def _check_value(name: str, value: Any, kind: str, nullable: bool, keywords: tuple[str, ...],
                 meta: Mapping[str, Any]) -> Any:
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{name} must be set (null is not valid)")
    if isinstance(value, str) and kind in ("int", "float"):
        if keywords and is_keyword_value(value, keywords):
            return value
        valid = bounds_text(meta["low"], meta["high"]) if meta["low"] is not None or \
            meta["high"] is not None else ""
        also = f" or {' / '.join(repr(k) for k in keywords)}" if keywords else ""
        raise ValueError(f"{name} must be a number {valid}{also}, got {value!r}".replace("  ", " "))
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
    elif kind == "list":
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        value = tuple(value)
        if not value:
            raise ValueError(f"{name} must not be empty")
        if not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name} must hold non-empty strings, got {list(value)!r}")
    else:
        value = _number(name, value, kind)
        low, high = meta["low"], meta["high"]
        if (low is not None and value < low) or (high is not None and value > high):
            noun = "an integer" if kind == "int" else "a number"
            raise ValueError(f"{name} must be {noun} {bounds_text(low, high)}, got {value!r}")
    choices = meta["choices"]
    if choices is not None and value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, choices))}")
    return value


def _number(name: str, value: Any, kind: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if kind == "int":
        if value != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value if type(value) is int else int(value)
    return value if type(value) is float else float(value)


@dataclass(frozen=True)
class ParamInfo:
    """Everything known about one declared parameter (one entry of ``--print-schema``)."""

    name: str
    """snake_case field name (the key in the result file's flat ``params``)."""
    flag: str
    """Command-line flag of ``donkeyrl train``."""
    type: str
    """One of :data:`TYPE_NAMES`."""
    default: Any
    """Default value (None: unset / off, or agent-dependent: see ``agent_defaults``)."""
    low: float | None = None
    """Inclusive lower bound."""
    high: float | None = None
    """Inclusive upper bound."""
    log: bool = False
    """Search on a log scale."""
    choices: tuple[Any, ...] | None = None
    """The only valid values."""
    nullable: bool = False
    """Accepts ``none`` (null): off / automatic."""
    keywords: tuple[str, ...] = ()
    """Strings accepted besides numbers (``auto`` also means ``auto_<number>``)."""
    help: str = ""
    """The field's docstring."""
    section: str = ""
    """Section of the trial configuration holding it."""
    target: str = "config"
    """What the value configures: model, policy, env or config (see :func:`param`)."""
    requires: str | None = None
    """Condition under which alone it applies (``discrete``)."""
    metavar: str | None = None
    """Placeholder shown in help."""
    agents: tuple[str, ...] | None = None
    """Algorithms it applies to; None: all."""
    agent_defaults: dict[str, Any] | None = None
    """Per-algorithm defaults where they differ (then ``default`` is None)."""

    def schema(self) -> dict[str, Any]:
        """The JSON-ready ``--print-schema`` entry."""
        return {"flag": self.flag, "type": self.type, "default": _jsonable(self.default),
                "agent_defaults": self.agent_defaults, "low": self.low, "high": self.high,
                "log": self.log, "choices": list(self.choices) if self.choices is not None else None,
                "nullable": self.nullable, "keywords": list(self.keywords) or None,
                "agents": list(self.agents) if self.agents is not None else None,
                "section": self.section, "target": self.target, "requires": self.requires,
                "help": self.help}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe(cls: type, section: str) -> list[ParamInfo]:
    """ParamInfo of every declared field of dataclass ``cls``, in declaration order."""
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = field_meta(cls, f.name)
        if not meta:
            continue
        kind, nullable, _ = _split_type(_hints(cls)[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append(ParamInfo(
            name=f.name, flag=meta["flag"] or "--" + f.name.replace("_", "-"), type=kind,
            default=default, low=meta["low"], high=meta["high"], log=meta["log"],
            choices=tuple(meta["choices"]) if meta["choices"] is not None else None,
            nullable=nullable, keywords=meta["keywords"], help=docs.get(f.name, ""),
            section=section, target=meta["target"], requires=meta["requires"],
            metavar=meta["metavar"]))
    return out
