"""The one place for units and rates shared by the simulators, the envs and the learners.

Lengths come in two units:

- **simulator units**: the built-in simulator's and the real DonkeyCar simulator's world unit
  (positions, cte, progress, track length). A generated road's centre-line nodes are 2 units apart.
- **telemetry units**: what the real simulator reports in its telemetry (``pos``, ``speed``,
  ``forward_vel``): simulator units divided by :data:`TELEMETRY_SCALE`. gym-donkeycar's
  ``speed`` is in telemetry units per second, so the same number means the same thing on both
  simulators.

Time: the real simulator runs its physics at :data:`PHYSICS_RATE_HZ` and sends one telemetry
frame (and accepts one control) every :data:`CONTROL_PERIOD_SEC`; the built-in simulator keeps the
same rates so that a policy's actions mean the same thing on both.
"""

from __future__ import annotations

#: Simulator units per telemetry unit (the real simulator divides positions and speeds by 8).
TELEMETRY_SCALE = 8.0

#: Simulated seconds between two control steps / telemetry frames (20 Hz, like the real simulator).
CONTROL_PERIOD_SEC = 0.05

#: Control steps per simulated second.
CONTROL_RATE_HZ = 1.0 / CONTROL_PERIOD_SEC

#: Physics ticks per simulated second (the real simulator's Unity physics rate).
PHYSICS_RATE_HZ = 100

#: Fastest plausible car speed (simulator units/s): the built-in car tops out at 40 units/s and the
#: real simulator's top speed is about 30 telemetry units/s only on long straights; a lap faster
#: than ``track_length / MAX_PLAUSIBLE_SPEED`` is physically implausible (a reward-hacking sign).
MAX_PLAUSIBLE_SPEED = 60.0


def telemetry_to_sim(value: float) -> float:
    """Telemetry units (or units/s) -> simulator units (or units/s)."""
    return value * TELEMETRY_SCALE


def sim_to_telemetry(value: float) -> float:
    """Simulator units (or units/s) -> telemetry units (or units/s)."""
    return value / TELEMETRY_SCALE


def steps_to_seconds(steps: int | float) -> float:
    """Control steps -> simulated seconds."""
    return float(steps) * CONTROL_PERIOD_SEC


def seconds_to_steps(seconds: float) -> int:
    """Simulated seconds -> whole control steps (rounded)."""
    return int(round(seconds / CONTROL_PERIOD_SEC))
