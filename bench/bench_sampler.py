"""Sampler and store cost.

    python bench/bench_sampler.py [--seconds 10] [--runs 3]

1. CPU cost of the sampling path the recorder runs (sampler thread + session
   stats + buffered CSV writes flushed every second) at the default period, for
   1 and 8 GPUs: simulated GPUs, and NVML GPUs through the test suite's stand-in
   NVML library (the real pynvml binding and ctypes calls; the driver's own cost
   on a real GPU comes on top and is not measured here).
2. Store: writing one hour of 8-GPU samples at the default period, and compacting
   it to Parquet.
3. Compaction memory: the peak RSS (VmHWM, Linux) of a fresh process compacting a 1-hour
   and a 72-hour 8-GPU session at the default period (the 1-hour CSV written by the
   writer above, repeated; about 1.1 GB of CSV for 72 h). Target: under 300 MB whatever
   the length.

Prints medians of several runs. Target: under 1% of one core with 8 GPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wattui.sampler import DEFAULT_PERIOD_S, Sampler  # noqa: E402
from wattui.sources.base import Sample  # noqa: E402
from wattui.sources.simulated import SimulatedSource  # noqa: E402
from wattui.store.summary import SessionStats  # noqa: E402
from wattui.store.writer import SessionWriter  # noqa: E402


def cpu_now() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_sampling(make_source, seconds: float) -> float:
    """Percent of one core used by the sampling path over ``seconds``."""
    with tempfile.TemporaryDirectory() as d:
        src = make_source()
        sampler = Sampler([src], DEFAULT_PERIOD_S)
        writer = SessionWriter(Path(d), "bench", {"devices": [x.to_dict() for x in src.devices()]})
        stats = SessionStats()
        nxt = [0.0]

        def listener(s: Sample) -> None:
            stats.add(s)
            writer.add_sample(s)
            if s.t_mono >= nxt[0]:
                nxt[0] = s.t_mono + 1.0
                writer.flush(live={"devices": stats.to_dict()})

        sampler.subscribe(listener)
        c0, t0 = cpu_now(), time.monotonic()
        sampler.start()
        time.sleep(seconds)
        sampler.stop()
        c1, t1 = cpu_now(), time.monotonic()
        src.close()
    return 100.0 * (c1 - c0) / (t1 - t0)


def nvml_stub_factory(n: int, workdir: str):
    """NvmlSource over n GPUs of the test suite's stand-in NVML library, or None."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        from nvml_stub.build import FakeNvml, StubUnavailable
    except ImportError:
        return None
    try:
        fake = FakeNvml.create(workdir, count=n)
    except StubUnavailable:
        return None
    from wattui.sources.nvml import NvmlSource

    def make(follow: bool = False):
        with fake.activated():
            src = NvmlSource(use_env=False)
        if follow:  # what `wattui record` does: also the run's share of each GPU (gpuN:run)
            src.follow_run(lambda: {1})
        return src

    return fake, make


CHILD_COMPACT = r"""
import sys, time
from pathlib import Path
import polars  # noqa: F401 - imported before the baseline: it is not compaction's cost
from wattui.store.writer import compact
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
base = hwm()
t0 = time.perf_counter()
compact(Path(sys.argv[1]))
print(base, hwm(), time.perf_counter() - t0)
"""


def bench_compaction_memory(block: bytes, hours: list[float]) -> None:
    """Peak RSS of a fresh process compacting sessions of ``hours`` (1 h = ``block``)."""
    import os
    import subprocess

    if not os.path.exists("/proc/self/status"):
        print("compaction memory: VmHWM is Linux's; skipped")
        return
    from wattui.store import schema

    print(f"compaction memory (fresh process, peak RSS = VmHWM; machine load "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for h in hours:
        with tempfile.TemporaryDirectory() as d:
            w = SessionWriter(Path(d), f"compact-{h:g}h", {})
            with open(w.dir / schema.SAMPLES_LIVE, "ab") as f:
                whole, part = divmod(h, 1)
                for _ in range(int(whole)):
                    f.write(block)
                f.write(block[: block.rfind(b"\n", 0, int(len(block) * part)) + 1])
            size = (w.dir / schema.SAMPLES_LIVE).stat().st_size
            r = subprocess.run([sys.executable, "-c", CHILD_COMPACT, str(w.dir)],
                               capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
            if r.returncode != 0:
                raise SystemExit(f"compaction child failed:\n{r.stderr[-2000:]}")
            base, peak, secs = r.stdout.split()
            print(f"  {h:g} h: {size / 1e6:,.0f} MB of CSV -> "
                  f"{(w.dir / schema.SAMPLES_FINAL).stat().st_size / 1e6:,.1f} MB Parquet in "
                  f"{float(secs):.1f} s; peak RSS {int(peak) / 1e6:.0f} MB "
                  f"(polars imported: {int(base) / 1e6:.0f} MB)  target < 300 MB")


def bench_store(runs: int) -> bytes:
    n_ticks = int(3600 / DEFAULT_PERIOD_S)
    t = [1_700_000_000.0]
    src = SimulatedSource(8, clock=lambda: t[0])
    samples = []
    for i in range(n_ticks):
        t[0] = 1_700_000_000.0 + i * DEFAULT_PERIOD_S
        samples.append(Sample(i, float(i), t[0], tuple(src.read(0.0))))
    writes, compacts, sizes = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            w = SessionWriter(Path(d), "bench", {})
            c0 = time.perf_counter()
            per_flush = int(1 / DEFAULT_PERIOD_S)
            for i, s in enumerate(samples):
                w.add_sample(s)
                if i % per_flush == 0:
                    w.flush()
            w.flush()
            c1 = time.perf_counter()
            block = (w.dir / "samples.csv").read_bytes()
            block = block[block.index(b"\n") + 1 :]  # one hour of rows, no header
            from wattui.store.writer import compact

            compact(w.dir)
            c2 = time.perf_counter()
            writes.append(c1 - c0)
            compacts.append(c2 - c1)
            sizes.append((w.dir / "samples.parquet").stat().st_size)
    rows = n_ticks * 8
    print(f"store: 1 h of 8 GPUs at {DEFAULT_PERIOD_S} s = {rows:,} rows")
    print(f"  write (buffer + flush every 1 s): median {statistics.median(writes):.2f} s total "
          f"= {1e3 * statistics.median(writes) / 3600:.3f} ms per second of run "
          f"({100 * statistics.median(writes) / 3600:.4f}% of a core)")
    print(f"  compaction to Parquet: median {statistics.median(compacts):.2f} s, "
          f"{statistics.median(sizes) / 1e6:.2f} MB")
    return block


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compact-hours", default="1,72",
                    help="session lengths whose compaction memory is measured (default 1,72)")
    args = ap.parse_args()
    print(f"sampling at the default period ({DEFAULT_PERIOD_S} s), {args.seconds:.0f} s x {args.runs} runs")
    cases = [
        ("simulated, 1 GPU", lambda: SimulatedSource(1), None),
        ("simulated, 8 GPUs", lambda: SimulatedSource(8), None),
    ]
    stubdir = tempfile.mkdtemp()
    for n in (1, 8):
        got = nvml_stub_factory(n, stubdir)
        if got is None:
            print("  (NVML stand-in library could not be built: NVML cases skipped)")
            break
        fake, make = got
        cases.append((f"NVML (stand-in library), {n} GPU{'s' if n > 1 else ''}", make, fake))
    if len(cases) == 4:
        fake, make = cases[-1][2], cases[-1][1]
        fake.update(**{"*.pids": "1,2", "*.sm": "60,20"})
        cases.append(("NVML (stand-in), 8 GPUs, run's share", lambda: make(True), fake))
    for name, factory, fake in cases:
        ctx = fake.activated() if fake is not None else contextlib.nullcontext()
        with ctx:
            pct = [run_sampling(factory, args.seconds) for _ in range(args.runs)]
        med = statistics.median(pct)
        print(f"  {name:<36} median {med:6.3f}% of one core = {med * 36:6.1f} CPU s per hour "
              f"(runs: {', '.join(f'{p:.3f}' for p in pct)})")
    block = bench_store(args.runs)
    hours = [float(h) for h in args.compact_hours.split(",") if h.strip()]
    if hours:
        bench_compaction_memory(block, hours)


if __name__ == "__main__":
    main()
