"""Hot vs cold inputs on random op configurations: how much slower an op runs when its inputs
come from memory (as inside a model) than when it repeats on one input (as calibration does).

    python scripts/cold_inputs.py [--kinds batch_norm,unary,...] [--configs 8] [--seed 23]
                                  [--save JSON]

Single-threaded process CPU time per pass (a time-proportional proxy, not energy), the median
of 3 windows of 0.15 s, hot and cold measured back to back on each config. Also prints the
set-independent streaming cost per byte of a copy far past any cache, measured the same way.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wattui.estimate import calibrate as C  # noqa: E402

KINDS = "batch_norm,unary,conv2d_depthwise,silu,add,mul,relu,conv2d,copy,maxpool2d"


def per_pass(counter, kind: str, cfg: dict, inputs: str) -> float:
    run = C.make_runner(kind, cfg, "cpu", "inference", inputs)
    return C.measure(counter, run, 0.15, 3, time.process_time)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=KINDS)
    ap.add_argument("--configs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--save", metavar="JSON")
    ns = ap.parse_args(argv)
    counter = C.TimeCounter()
    n = 1 << 25  # copies of 128 and 256 MiB: past any cache, outputs in fresh pages
    stream = [per_pass(counter, "copy", {"batch_size": 1, "input_size": k * n}, "cold")
              for k in (1, 2)]
    per_byte = (stream[1] - stream[0]) / (n * 8)
    load0 = os.getloadavg()
    rng = random.Random(ns.seed)
    rows = []
    print(f"copy past the cache: {per_byte * 1e9:.3f} ns per byte moved")
    for kind in ns.kinds.split(","):
        for _ in range(ns.configs):
            cfg = C.sample_model_config(kind, rng)
            f = C.features(kind, cfg)
            hot, cold = (per_pass(counter, kind, cfg, i) for i in ("hot", "cold"))
            rows.append({"layer": kind, **cfg, **f, "hot_s": hot, "cold_s": cold})
        ratios = [r["cold_s"] / r["hot_s"] for r in rows if r["layer"] == kind]
        floor = [r["bytes"] * per_byte / r["cold_s"] for r in rows if r["layer"] == kind]
        print(f"{kind:18s} cold/hot median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}); bytes x copy cost / cold "
              f"median {statistics.median(floor):.2f}", flush=True)
    load = (load0, os.getloadavg())
    print(f"load average {load[0][0]:.1f} before, {load[1][0]:.1f} after")
    if ns.save:
        Path(ns.save).write_text(json.dumps({"per_byte_s": per_byte, "load": load,
                                             "seed": ns.seed, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
