"""Search space: named hyperparameters and their encoding to the unit cube.

The GP works on points ``x`` in ``[0, 1]^d`` (one coordinate per non-fixed parameter); the
trainer wants a ``dict`` of typed values. This module is the only place that converts between
the two, so that every proposal is a valid point (integers on their grid, categoricals among
their choices) and every observation is encoded the same way.

Encoding per kind (``u`` is the unit coordinate):

- ``float``: ``u = (v - low) / (high - low)``, or the same on ``log(v)`` when ``log`` is set.
  Decoded floats are rounded to 12 significant digits so that human-entered values such as
  ``0.002`` survive an encode/decode round trip exactly.
- ``int``: the ``n = high - low + 1`` integers split ``[0, 1]`` into equal buckets and ``v``
  is encoded at its bucket centre ``(v - low + 0.5) / n`` (log scale: buckets equal in
  ``log``, bounds ``low - 0.5`` and ``high + 0.5``). A uniform ``u`` therefore decodes to a
  uniform integer, and ``snap`` moves any ``u`` to its bucket centre.
- ``categorical``: choice ``i`` of ``k`` is encoded at ``(i + 0.5) / k``; the kernel compares
  categorical coordinates only for equality (see ``gp.py``).
- ``fixed``: not encoded (no coordinate); always decoded to its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["SearchSpace", "SearchSpaceError", "Param", "KINDS"]

KINDS = ("int", "float", "categorical", "fixed")


class SearchSpaceError(ValueError):
    """An invalid search-space definition or a parameter value outside the space."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter of the search space."""

    name: str
    """Parameter name; the trainer receives it as ``--name-with-dashes``."""
    kind: str
    """One of ``int``, ``float``, ``categorical``, ``fixed``."""
    low: float | None = None
    """Inclusive lower bound (``int`` and ``float``)."""
    high: float | None = None
    """Inclusive upper bound (``int`` and ``float``); must exceed ``low``."""
    log: bool = False
    """Search on a log scale (needs ``low > 0``, and ``low >= 1`` for integers)."""
    choices: tuple[Any, ...] = ()
    """Allowed values of a ``categorical`` parameter, in order."""
    value: Any = None
    """The value of a ``fixed`` parameter."""

    @property
    def n_levels(self) -> int:
        """Number of distinct values (0 for continuous floats)."""
        if self.kind == "int":
            return int(self._high) - int(self._low) + 1
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "fixed":
            return 1
        return 0

    @property
    def _low(self) -> float:
        """``low`` of a numeric parameter (set for int and float kinds, see ``from_dict``)."""
        assert self.low is not None, f"{self.name}: a {self.kind} parameter has no bounds"
        return self.low

    @property
    def _high(self) -> float:
        assert self.high is not None, f"{self.name}: a {self.kind} parameter has no bounds"
        return self.high

    # --- scalar encode / decode -------------------------------------------------------------
    def _scale(self) -> tuple[float, float]:
        """Bounds of the (log-)scale on which the unit coordinate is linear."""
        lo, hi = float(self._low), float(self._high)
        if self.kind == "int":
            lo, hi = lo - 0.5, hi + 0.5
        if self.log:
            return math.log(lo), math.log(hi)
        return lo, hi

    def encode(self, v: Any) -> float:
        """Unit coordinate of the valid value ``v`` (raises SearchSpaceError otherwise)."""
        if self.kind == "categorical":
            for i, c in enumerate(self.choices):
                if isinstance(v, bool) == isinstance(c, bool) and v == c:
                    return (i + 0.5) / len(self.choices)
            raise SearchSpaceError(f"{self.name}={v!r} is not one of {list(self.choices)}")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise SearchSpaceError(f"{self.name}={v!r} is not a number")
        v = float(v)
        if not math.isfinite(v) or v < self.low or v > self.high:
            raise SearchSpaceError(f"{self.name}={v!r} is outside [{self.low}, {self.high}]")
        if self.kind == "int" and v != round(v):
            raise SearchSpaceError(f"{self.name}={v!r} is not an integer")
        a, b = self._scale()
        t = math.log(v) if self.log else v
        return min(max((t - a) / (b - a), 0.0), 1.0)

    def decode(self, u: float) -> Any:
        """Valid value for the unit coordinate ``u`` (clipped to [0, 1])."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "categorical":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        a, b = self._scale()
        t = a + u * (b - a)
        v = math.exp(t) if self.log else t
        if self.kind == "int":
            return int(min(max(round(v), int(self._low)), int(self._high)))
        return min(max(float(f"{v:.12g}"), float(self._low)), float(self._high))

    def to_dict(self) -> dict[str, Any]:
        """The ``from_dict`` form of this parameter."""
        if self.kind == "fixed":
            return {"type": "fixed", "value": self.value}
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        low, high = (int(self._low), int(self._high)) if self.kind == "int" else (self.low, self.high)
        return {"type": self.kind, "low": low, "high": high, "log": self.log}


def _number(name: str, spec: Mapping[str, Any], key: str) -> float:
    if key not in spec:
        raise SearchSpaceError(f"parameter {name!r}: missing {key!r} (spec {dict(spec)})")
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SearchSpaceError(f"parameter {name!r}: {key}={v!r} must be a finite number")
    return float(v)


def _param_from_spec(name: str, spec: Mapping[str, Any]) -> Param:
    """Validate one parameter spec; every error names the parameter and the bad value."""
    if not isinstance(name, str) or not name:
        raise SearchSpaceError(f"parameter names must be non-empty strings, got {name!r}")
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"parameter {name!r}: spec must be a dict, got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise SearchSpaceError(f"parameter {name!r}: type={kind!r}, valid types are {list(KINDS)}")
    if kind == "fixed":
        if "value" not in spec:
            raise SearchSpaceError(f"parameter {name!r}: a fixed parameter needs 'value'")
        return Param(name, "fixed", value=spec["value"])
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or len(choices) == 0:
            raise SearchSpaceError(f"parameter {name!r}: choices={choices!r} must be a non-empty list")
        if len({repr(c) for c in choices}) != len(choices):
            raise SearchSpaceError(f"parameter {name!r}: duplicate choices in {list(choices)}")
        return Param(name, "categorical", choices=tuple(choices))
    low, high = _number(name, spec, "low"), _number(name, spec, "high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"parameter {name!r}: log={log!r} must be true or false")
    if low >= high:
        raise SearchSpaceError(f"parameter {name!r}: low={low} must be < high={high}")
    if kind == "int" and (low != round(low) or high != round(high)):
        raise SearchSpaceError(f"parameter {name!r}: int bounds must be integers, got {low}, {high}")
    if log and low <= 0:
        raise SearchSpaceError(f"parameter {name!r}: log scale needs low > 0, got low={low}")
    if log and kind == "int" and low < 1:
        raise SearchSpaceError(f"parameter {name!r}: log-scale int needs low >= 1, got low={low}")
    return Param(name, kind, low=low, high=high, log=log)


class SearchSpace:
    """An ordered set of parameters with unit-cube encoding (see the module docstring)."""

    def __init__(self, params: Sequence[Param]) -> None:
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise SearchSpaceError(f"duplicate parameter names in {names}")
        self.params: tuple[Param, ...] = tuple(params)
        self.free: tuple[Param, ...] = tuple(p for p in params if p.kind != "fixed")
        """Parameters with a coordinate in the unit cube, in coordinate order."""
        self.is_categorical = np.array([p.kind == "categorical" for p in self.free], dtype=bool)
        """(d,) True for coordinates compared only for equality by the kernel."""
        self.n_levels = np.array([p.n_levels for p in self.free], dtype=np.int64)
        """(d,) number of grid levels per coordinate; 0 = continuous."""

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Build from ``{name: {"type": ..., ...}}``; raises SearchSpaceError naming bad values."""
        if not isinstance(spec, Mapping) or not spec:
            raise SearchSpaceError(f"search space must be a non-empty dict, got {spec!r}")
        return cls([_param_from_spec(n, s) for n, s in spec.items()])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The ``from_dict`` form (JSON-serialisable for JSON-serialisable choices)."""
        return {p.name: p.to_dict() for p in self.params}

    @property
    def names(self) -> list[str]:
        """All parameter names, fixed ones included, in definition order."""
        return [p.name for p in self.params]

    @property
    def dim(self) -> int:
        """Number of unit-cube coordinates ``d`` (non-fixed parameters)."""
        return len(self.free)

    @property
    def size(self) -> float:
        """Number of distinct points (``inf`` if any float parameter is free)."""
        if any(n == 0 for n in self.n_levels):
            return math.inf
        return float(np.prod(self.n_levels.astype(float))) if self.dim else 1.0

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """(d,) unit coordinates of ``params``; keys not in the space are ignored.

        Extra keys are tolerated because trial records carry every parameter the trainer used.
        """
        if not isinstance(params, Mapping):
            raise SearchSpaceError(f"params must be a dict, got {params!r}")
        missing = [p.name for p in self.free if p.name not in params]
        if missing:
            raise SearchSpaceError(f"params {dict(params)} miss {missing} (space: {self.names})")
        return np.array([p.encode(params[p.name]) for p in self.free], dtype=float)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Valid parameter dict for a unit-cube point ``x`` of shape (d,)."""
        x = np.asarray(x, dtype=float).reshape(-1)
        if x.shape[0] != self.dim:
            raise SearchSpaceError(f"point has {x.shape[0]} coordinates, space has {self.dim}")
        if not np.all(np.isfinite(x)):
            raise SearchSpaceError(f"point {x} has non-finite coordinates")
        it = iter(x)
        return {p.name: (p.value if p.kind == "fixed" else p.decode(next(it))) for p in self.params}

    def snap(self, X: np.ndarray) -> np.ndarray:
        """(m, d) copy of ``X`` clipped to the cube, discrete coordinates at their bucket centres.

        Snapped points encode exactly the values ``decode`` returns, so the kernel sees the
        point that will actually be trained.
        """
        X = np.clip(np.array(X, dtype=float, ndmin=2), 0.0, 1.0)
        for j in np.flatnonzero(self.n_levels > 0):
            p, k = self.free[j], int(self.n_levels[j])
            if p.kind == "int" and p.log:
                X[:, j] = [p.encode(p.decode(u)) for u in X[:, j]]
            else:
                X[:, j] = (np.minimum(np.floor(X[:, j] * k), k - 1) + 0.5) / k
        return X

    def sample(self, rng: np.random.Generator | int | None, n: int) -> list[dict[str, Any]]:
        """``n`` independent uniform draws (log-uniform on log scales)."""
        rng = np.random.default_rng(rng)
        return [self.decode(u) for u in rng.random((n, self.dim))]

    def grid(self) -> np.ndarray:
        """(size, d) every snapped point of a finite space (all coordinates discrete)."""
        if not math.isfinite(self.size):
            raise SearchSpaceError("grid() needs a space without free float parameters")
        levels = []
        for j, p in enumerate(self.free):
            if p.kind == "int" and p.log:
                levels.append(np.array([p.encode(v) for v in range(int(p._low), int(p._high) + 1)]))
            else:
                k = int(self.n_levels[j])
                levels.append((np.arange(k) + 0.5) / k)
        mesh = np.meshgrid(*levels, indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1) if levels else np.zeros((1, 0))

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_dict()!r})"
