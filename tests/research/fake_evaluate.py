"""A fast stand-in for ``donkeyrl evaluate --set test`` used by the final-test tests.

It takes the flags the final test passes (``--model DIR --set SET --baseline DIR --out DIR``),
checks that both models exist, and writes ``head_to_head.json`` / ``head_to_head.txt`` into
``--out`` with the real writer (``donkeyrl.rl.headtohead.write``), rows made up from the file
sizes of the two models (no driving). It also records its own argv in ``<out>/fake-evaluate.json``
(appended per call). ``--fail`` makes it exit 1 with a message, ``--hang`` sleep forever.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    for flag in ("--model", "--set", "--baseline", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--fail", action="store_true")
    p.add_argument("--hang", action="store_true")
    args = p.parse_args()
    calls_file = os.path.join(args.out, "fake-evaluate.json")
    calls = []
    if os.path.exists(calls_file):
        with open(calls_file) as fh:
            calls = json.load(fh)
    with open(calls_file, "w") as fh:
        json.dump([*calls, sys.argv[1:]], fh)
    if args.hang:
        while True:
            time.sleep(1)
    if args.fail:
        print("error: simulated evaluation failure", file=sys.stderr)
        return 1
    for d in (args.model, args.baseline):
        if not os.path.isfile(os.path.join(d, "model.zip")):
            print(f"error: no model in {d}", file=sys.stderr)
            return 2
    from donkeyrl.rl.headtohead import write

    tracks = ["circuit_launch", "procedural-20000"]
    rows = [{"method": m, "track": t, "runs": 1, "lap_rate": 1.0 if m == "expert" else 0.5,
             "best_lap_time": 9.0, "mean_lap_time": 9.5, "mean_abs_cte": 0.4, "off_track_count": 0,
             "race_score": 100.0} for m in ("model", "baseline", "expert") for t in tracks]
    summary = {m: {"lap_rate": 1.0, "race_score": 100.0, "mean_lap_time_ratio": 1.0,
                   "mean_abs_cte": 0.4, "off_track_count": 0} for m in ("model", "baseline", "expert")}
    doc = {"set": args.set, "tracks": tracks,
           "methods": {"model": args.model, "baseline": args.baseline, "expert": "expert"},
           "rows": rows, "summary": summary}
    write(doc, args.out)
    print("head-to-head written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
