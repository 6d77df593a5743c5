"""Steps per second through the DonkeyCar protocol (server in fast mode) vs the in-process env.

Every variant drives the same track with the same constant action and the same 120x160x3 camera:
  in-process: ``make_env(sim="embedded")`` stepping the simulator and renderer directly;
  tcp:        ``make_env(sim="donkey")`` over loopback to ``donkeyrl sim serve --fast`` in its own
              process (render + JPEG encode on the server, JSON + base64 + JPEG decode on the client);
  baseline:   with ``--baseline-rev REV``, the same over loopback to the protocol server module
              (``donkey/server.py``) of git revision REV, run on today's simulator and codec, so a
              change of the server's per-step path is measured against the old one in the same run.
  lidar:      with ``--lidar``, the tcp variant with gym-donkeycar's default lidar turned on
              (180 rays, one level) by a ``lidar_config`` sent over the env's connection.

Variants are measured in interleaved rounds (median reported) so machine load hits them alike.

Run:  .venv/bin/python benchmarks/tcp_throughput.py [--steps 2000] [--rounds 3] [--track generated_track]
                                                   [--baseline-rev REV] [--lidar] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.launcher import SimLauncher
from donkeyrl.envs import make_env

SERVE = "import sys\nfrom donkeyrl.cli import main\nsys.exit(main(['sim', 'serve', '--fast', *sys.argv[1:]]))\n"
#: The old server module is imported from a file next to the launcher script, on today's package.
BASELINE = ("import argparse, sys\nsys.path.insert(0, {dir!r})\nfrom baseline_server import DonkeySimServer, "
            "ServerConfig\np = argparse.ArgumentParser()\np.add_argument('--port', type=int)\n"
            "p.add_argument('--host')\na = p.parse_args()\n"
            "DonkeySimServer(ServerConfig(host=a.host, port=a.port, fast=True)).serve_forever()\n")


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


def tcp_rate(exe: Path, track: str, steps: int, lidar: bool = False) -> float:
    """Steps/s through the protocol to the server that ``exe`` starts."""
    with SimLauncher(exe, startup_timeout=120) as sim:
        env = make_env(track, sim="donkey", host=sim.host, port=sim.port, max_steps=100_000)
        try:
            if lidar:
                env.unwrapped.client.send(P.LidarConfig())  # gym-donkeycar's default lidar
            return drive(env, steps)
        finally:
            env.close()


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per variant and round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3; medians reported)")
    parser.add_argument("--track", default="generated_track", help="scene to drive (default generated_track)")
    parser.add_argument("--baseline-rev", default=None, metavar="REV",
                        help="also measure the protocol server of this git revision (e.g. HEAD~3)")
    parser.add_argument("--lidar", action="store_true", help="also measure with the default lidar on")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds must be >= 1, got {args.steps}, {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"tcp_fast": script(Path(tmp), "serve", SERVE)}
        if args.baseline_rev:
            repo = Path(__file__).resolve().parents[1]
            try:
                old = subprocess.run(["git", "show", f"{args.baseline_rev}:src/donkeyrl/donkey/server.py"],
                                     cwd=repo, check=True, capture_output=True, text=True).stdout
            except subprocess.CalledProcessError as exc:
                parser.error(f"--baseline-rev {args.baseline_rev!r}: {exc.stderr.strip()}")
            (Path(tmp) / "baseline_server.py").write_text(old)
            variants["tcp_fast_baseline"] = script(Path(tmp), "baseline", BASELINE.format(dir=tmp))
        rates: dict[str, list[float]] = {"in_process": []}
        rates.update({name: [] for name in variants})
        if args.lidar:
            rates["tcp_fast_lidar"] = []
        for _ in range(args.rounds):
            env = make_env(args.track, sim="embedded", max_steps=100_000, start_noise=False)
            try:
                rates["in_process"].append(drive(env, args.steps))
            finally:
                env.close()
            for name, exe in variants.items():
                rates[name].append(tcp_rate(exe, args.track, args.steps))
            if args.lidar:
                rates["tcp_fast_lidar"].append(tcp_rate(variants["tcp_fast"], args.track, args.steps, lidar=True))
    med = {name: statistics.median(v) for name, v in rates.items()}
    result: dict[str, object] = {"track": args.track, "steps": args.steps, "rounds": args.rounds,
                                 "camera": "120x160x3", "baseline_rev": args.baseline_rev}
    result.update({f"{name}_steps_per_s": round(v, 1) for name, v in med.items()})
    result["tcp_over_in_process"] = round(med["tcp_fast"] / med["in_process"], 3)
    if "tcp_fast_baseline" in med:
        result["tcp_over_baseline"] = round(med["tcp_fast"] / med["tcp_fast_baseline"], 3)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    result["machine"] = f"{platform.machine()} {platform.python_version()}"
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
