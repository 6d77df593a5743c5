"""Steps per second through the DonkeyCar protocol (server in fast mode) vs the in-process env.

Both drive the same track with the same constant action and the same 120x160x3 camera:
  in-process: ``make_env(sim="embedded")`` stepping the simulator and renderer directly;
  tcp:        ``DonkeySimEnv`` over loopback to ``donkeyrl sim serve --fast`` in its own process
              (render + JPEG encode on the server, JSON + base64 + JPEG decode on the client).

Run:  .venv/bin/python benchmarks/tcp_throughput.py [--steps 2000] [--track generated_track] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import stat
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from donkeyrl.donkey.client import ClientConfig
from donkeyrl.donkey.env import DonkeySimEnv
from donkeyrl.donkey.launcher import SimLauncher
from donkeyrl.envs import make_env
from donkeyrl.envs.common import EpisodeLimits


def drive(env, steps: int) -> float:
    """Steps/s of ``steps`` steps with a gentle constant action (resets when an episode ends)."""
    env.reset(seed=0)
    for _ in range(20):  # warm-up (JIT, first frames)
        env.step(np.array([0.0, 0.3], dtype=np.float32))
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(np.array([0.05, 0.3], dtype=np.float32))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def tcp_rate(track: str, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "donkeysim"
        exe.write_text(f"#!{sys.executable}\nimport sys\nfrom donkeyrl.cli import main\n"
                       "sys.exit(main(['sim', 'serve', '--fast', *sys.argv[1:]]))\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        with SimLauncher(exe, startup_timeout=120) as sim:
            env = DonkeySimEnv(track, host=sim.host, port=sim.port,
                               limits=EpisodeLimits(max_steps=100_000),
                               client_config=ClientConfig(config_delay=0.0))
            try:
                return drive(env, steps)
            finally:
                env.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per variant (default 2000)")
    parser.add_argument("--track", default="generated_track", help="scene to drive (default generated_track)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    env = make_env(args.track, sim="embedded", max_steps=100_000, start_noise=False)
    try:
        inproc = drive(env, args.steps)
    finally:
        env.close()
    tcp = tcp_rate(args.track, args.steps)
    result = {"track": args.track, "steps": args.steps, "camera": "120x160x3",
              "in_process_steps_per_s": round(inproc, 1), "tcp_fast_steps_per_s": round(tcp, 1),
              "tcp_over_in_process": round(tcp / inproc, 3),
              "machine": f"{platform.machine()} {platform.python_version()}"}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
