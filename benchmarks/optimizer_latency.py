"""Optimizer latency: fit + propose with 300 observations in 6 mixed dimensions.

The space mirrors a research run: two integers, a log float, two linear floats (one of them on
a log scale) and a 3-way categorical. The objective is a smooth synthetic function plus noise.

Measured (wall time of ``Optimizer.ask()``, which refits the GP hyperparameters and maximises
UCB): the optimizer has 299 observations and has already proposed once (its hyperparameters
are warm), then one more observation is told and ``ask()`` is timed, exactly as in the research
loop after every finished trial. Repeated on copies of the same optimizer with a different
300th observation each time; the median is reported. ``cold_ms`` is one ``ask()`` of a fresh
optimizer given the same 300 observations at once (no previous fit: full hyperparameter
optimisation from the prior), e.g. after a controller restart.

BLAS threads are left as the environment sets them: the optimizer itself limits BLAS to one
thread while it works (threadpoolctl), because on this 2-core machine shared with training
processes multi-threaded BLAS on 300x300 matrices made proposals 10-100x slower.

Usage: python benchmarks/optimizer_latency.py [--n 300] [--repeats 15] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time

import numpy as np

from donkeyrl.bo import Optimizer, SearchSpace

SPACE = {
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "n_throttle": {"type": "int", "low": 2, "high": 5},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "gamma": {"type": "float", "low": 0.9, "high": 0.999},
    "ent_coef": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "agent": {"type": "categorical", "choices": ["ppo", "dqn", "sac"]},
    "batch_size": {"type": "fixed", "value": 64},
}


def objective(p: dict, rng: np.random.Generator) -> float:
    """Synthetic reward with an optimum inside the space, plus Gaussian noise."""
    v = (-0.1 * (p["n_steer"] - 6) ** 2 - 0.2 * (p["n_throttle"] - 3) ** 2
         - (math.log10(p["learning_rate"]) + 3) ** 2 - 20 * (p["gamma"] - 0.97) ** 2
         - 0.3 * (math.log10(p["ent_coef"]) + 2) ** 2 + {"ppo": 0.5, "dqn": 0.0, "sac": 0.3}[p["agent"]])
    return v + 0.2 * rng.standard_normal()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="number of observations")
    ap.add_argument("--repeats", type=int, default=15, help="timed asks (median reported)")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    space = SearchSpace.from_dict(SPACE)
    rng = np.random.default_rng(0)
    points = space.sample(rng, args.n - 1 + args.repeats)
    values = [objective(p, rng) for p in points]

    base = Optimizer(space, seed=0)
    for p, v in zip(points[: args.n - 1], values):
        base.tell(p, v)
    base.ask()  # fit once: the hyperparameters are now warm, as in a running study
    times = []
    for r in range(args.repeats):
        opt = copy.deepcopy(base)
        opt.tell(points[args.n - 1 + r], values[args.n - 1 + r])
        t0 = time.perf_counter()
        opt.ask()
        times.append(1000 * (time.perf_counter() - t0))

    cold = Optimizer(space, seed=0)
    for p, v in zip(points[: args.n], values):
        cold.tell(p, v)
    t0 = time.perf_counter()
    cold.ask()
    cold_ms = 1000 * (time.perf_counter() - t0)

    out = {"n": args.n, "median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
           "cold_ms": cold_ms, "dims": space.dim, "repeats": args.repeats}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"fit + propose, {args.n} observations, {space.dim} mixed dims: median "
              f"{out['median_ms']:.1f} ms, p90 {out['p90_ms']:.1f} ms (warm); cold {cold_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
