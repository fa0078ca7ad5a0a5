"""wattui.measure on the stand-in NVML: accuracy per GPU and the cost of a window's edges.

    python bench/bench_measure.py [--seconds 5] [--runs 3] [--edges 200]

1. Accuracy: 16 stand-in GPUs on the real clock with square-wave loads (period 0.55 s, GPU i
   shifted by i/8 of a period); GPUs 0-7 have no energy counter (the window integrates power
   read by its dithered 100 ms poller), GPUs 8-15 are their twins with a counter. Error per
   GPU of a ``with wattui.measure()`` window against the twin's counter (the exact energy
   between the same reads), and of the counter GPUs against the stub's closed form.
2. Cost: the time one ``begin()`` + ``end()`` pair takes on 8 counter GPUs (median), i.e.
   what wrapping a block costs the training loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import wattui  # noqa: E402
from wattui import _measure  # noqa: E402


def _fresh() -> None:
    if _measure._meter is not None:
        for s in _measure._meter.sources:
            s.close()
    _measure._meter = None


def bench_accuracy(fake, seconds: float, runs: int) -> None:
    settings: dict[str, object] = {"count": 16, "*.wave_shape": "square", "*.wave_period_s": 0.55,
                                   "*.wave_w": 200, "*.power_w": 100}
    for i in range(8):
        for g in (i, i + 8):
            settings[f"gpu{g}.wave_phase"] = i / 8
        settings[f"gpu{i}.rc.nvmlDeviceGetTotalEnergyConsumption"] = "NOT_SUPPORTED"
    fake.configure(**settings)
    worst = []
    with fake.activated():
        for _ in range(runs):
            _fresh()
            with wattui.measure("bench") as m:
                time.sleep(seconds)
            by = {g["index"]: g for g in m.gpus}
            errs = [abs(100.0 * (by[i]["energy_j"] - by[i + 8]["energy_j"]) / by[i + 8]["energy_j"]) for i in range(8)]
            assert {by[i]["method"] for i in range(8)} == {"integrated"}
            worst.append(max(errs))
    _fresh()
    print(f"1. {seconds:g} s windows, square 0.55 s loads, integrated vs counter twin: worst GPU |error| % "
          f"median {statistics.median(worst):.3f} max {max(worst):.3f} (runs: {', '.join(f'{w:.3f}' for w in worst)})")


def bench_edges(fake, n: int) -> None:
    fake.configure(count=8)
    with fake.activated():
        _fresh()
        wattui.measure().begin().end()  # opens NVML once
        times = []
        for _ in range(n):
            t = time.perf_counter()
            wattui.measure("x").begin().end()
            times.append(time.perf_counter() - t)
        _fresh()
    print(f"2. begin()+end() on 8 counter GPUs: median {1e6 * statistics.median(times):.0f} us, "
          f"p95 {1e6 * sorted(times)[int(0.95 * len(times))]:.0f} us over {n}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--edges", type=int, default=200)
    args = ap.parse_args()
    os.environ.pop("WATTUI_SIMULATE", None)  # the stand-in NVML, not simulated GPUs
    from nvml_stub.build import FakeNvml, StubUnavailable

    try:
        fake = FakeNvml.create(tempfile.mkdtemp(), count=16)
    except StubUnavailable as e:
        print(f"skipped: {e}")
        return
    bench_accuracy(fake, args.seconds, args.runs)
    bench_edges(fake, args.edges)


if __name__ == "__main__":
    main()
