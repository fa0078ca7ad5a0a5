"""Integrated energy (GPUs without a counter) on square loads: error per GPU against exact.

    python bench/bench_integration.py [--seconds 20] [--real-seconds 20] [--seeds 10]

1. Virtual clock: the real Sampler loop over 8 simulated GPUs without a counter whose
   power is a square wave (period 0.5 s, 0.55 s, 2 s; GPU i shifted by i/8 of a period),
   at the default period (0.1 s, the fast period for sources without a counter), compared
   with the closed form. Fixed grid (the old schedule) vs dithered reads, several seeds.
2. Real clock: the real sampler thread over the stand-in NVML library (real pynvml and
   ctypes calls): 8 GPUs without a counter, each with a twin that has one, same square
   wave; the twin's counter is the exact energy between the same reads.

Prints the worst GPU's |error| per load (median and max over seeds / runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wattui.sampler import DEFAULT_PERIOD_S, Sampler  # noqa: E402
from wattui.sources.simulated import SimulatedSource  # noqa: E402

LOADS = (0.5, 0.55, 2.0)


class _VirtualClock:
    def __init__(self, start: float, end: float):
        self.t, self.end = start, end

    def now(self) -> float:
        return self.t

    def wait(self, delay: float) -> bool:
        self.t += delay
        return self.t >= self.end


class _Grid(random.Random):
    def random(self) -> float:
        return 0.0


def virtual_errors(period: float, seconds: float, rng: random.Random) -> list[float]:
    clock = _VirtualClock(1000.0, 1000.0 + seconds)
    src = SimulatedSource(8, clock=clock.now, square_period_s=period, counter=False)
    s = Sampler([src], DEFAULT_PERIOD_S, rng=rng, clock=clock.now, wait=clock.wait)
    s.sample_once()
    s._run()
    last = s.stop()
    return [
        100.0 * (r.energy_j - src.exact_energy(i)) / src.exact_energy(i)
        for i, r in enumerate(last.readings)
    ]


def bench_virtual(seconds: float, seeds: int) -> None:
    print(f"1. virtual clock, 8 simulated GPUs without a counter, {seconds:g} s, "
          f"{seeds} seeds: worst GPU |error| %")
    for period in LOADS:
        grid = max(abs(e) for e in virtual_errors(period, seconds, _Grid()))
        worst = [max(abs(e) for e in virtual_errors(period, seconds, random.Random(k)))
                 for k in range(seeds)]
        allerr = [e for k in range(seeds) for e in virtual_errors(period, seconds, random.Random(k))]
        print(f"  square {period:<4g} s: grid {grid:6.2f} | dithered median {statistics.median(worst):5.2f}"
              f" max {max(worst):5.2f} | mean signed error over all GPUs and seeds "
              f"{statistics.fmean(allerr):+.3f}")


def bench_stub(seconds: float, runs: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from nvml_stub.build import FakeNvml, StubUnavailable

    from wattui.sources.nvml import NvmlSource

    try:
        fake = FakeNvml.create(tempfile.mkdtemp(), count=16)
    except StubUnavailable as e:
        print(f"2. skipped: {e}")
        return
    print(f"2. real clock, stand-in NVML, 8 GPUs without a counter + 8 counter twins, "
          f"{seconds:g} s x {runs}: worst GPU |error| %")
    for period in LOADS:
        settings: dict[str, object] = {"count": 16, "*.wave_shape": "square",
                                       "*.wave_period_s": period, "*.wave_w": 200, "*.power_w": 100}
        for i in range(8):
            for g in (i, i + 8):
                settings[f"gpu{g}.wave_phase"] = i / 8
            settings[f"gpu{i}.rc.nvmlDeviceGetTotalEnergyConsumption"] = "NOT_SUPPORTED"
        fake.configure(**settings)
        worst = []
        with fake.activated():
            for _ in range(runs):
                src = NvmlSource(use_env=False)
                s = Sampler([src], DEFAULT_PERIOD_S)
                first = s.sample_once()
                s.start()
                time.sleep(seconds)
                last = s.stop()
                src.close()
                e0, e1 = first.by_key(), last.by_key()
                errs = []
                for i in range(8):
                    integ = e1[f"gpu{i}"].energy_j - e0[f"gpu{i}"].energy_j
                    exact = e1[f"gpu{i + 8}"].energy_j - e0[f"gpu{i + 8}"].energy_j
                    errs.append(abs(100.0 * (integ - exact) / exact))
                worst.append(max(errs))
        print(f"  square {period:<4g} s: read every {s.period_s:g} s, worst GPU median "
              f"{statistics.median(worst):5.2f} max {max(worst):5.2f} (runs: "
              f"{', '.join(f'{w:.2f}' for w in worst)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0, help="virtual session length")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--real-seconds", type=float, default=20.0, help="real-clock session length")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    bench_virtual(args.seconds, args.seeds)
    if args.real_seconds > 0:
        bench_stub(args.real_seconds, args.runs)


if __name__ == "__main__":
    main()
