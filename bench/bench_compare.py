"""Benchmark of the comparison screen and `wattui compare --format csv`. Prints medians.

    python bench/bench_compare.py                 # 1,000 sessions x 1 h x 8 GPUs at 1 Hz
    python bench/bench_compare.py --quick         # 100 sessions, 3 runs (smoke test)
    python bench/bench_compare.py --keep DIR      # build (or reuse) the store in DIR

The store: N finished sessions, each one hour of 8 simulated GPUs sampled at --rate Hz
(1 Hz: 3,600 ticks x 8 = 28,800 sample rows per session, written straight to
samples.parquet with Polars), a few metric events (events.parquet), and a meta.json with
the per-device summary and metric results, as the recorder leaves them; 1 % of the
sessions were interrupted (the recorder died: totals in live.json, metrics only in events).

Finished sessions' table rows and records are cached in <store>/.cache (the store's record
cache, stamped by each session's files); --cold drops that cache before every run of the
screen and csv, i.e. measures a first open.

Measured (targets < 1 s each):
1. Screen open: from spawning a fresh Python process to the comparison screen showing the
   whole table (read in its thread, applied; headless Textual app, imports included).
2. `wattui compare --format csv`: the whole command, process start to exit.
3. `wattui sessions --format json` (whole command; record cache warm, and once cold) and
   `wattui show --format json ID` (whole command; targets < 1 s and < 0.3 s at any store
   size). For a 10,000-session store use a low rate, e.g. ``--sessions 10000 --rate 0.01``.
4. In process, for reference: `wattui.analysis.table.load_table` alone, and the details screen's
   read of one session's samples.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

T0 = 1790000000.0

CHILD_SCREEN = r"""
import sys, time
from pathlib import Path
from wattui.tui.compare import CompareApp, CompareScreen
class Bench(CompareApp):
    # the screen reads the store in a thread; its message bubbles up here once applied
    def on_table_read(self, _message):
        scr = self.screen
        assert isinstance(scr, CompareScreen) and scr.view_df is not None
        self.rows = scr.view_df.height
        self.t = time.time()
        self.exit()
app = Bench(Path(sys.argv[1]), refresh_s=0)
app.run(headless=True, size=(200, 50))
print(f"{app.t!r} {app.rows}")
"""

CHILD_CSV = r"""
import sys
from wattui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def build_store(root: Path, n: int, rate_hz: float, gpus: int = 8) -> dict:
    import numpy as np
    import polars as pl

    from wattui.store import schema
    from wattui.store.reader import conform_events, conform_samples

    sdir = root / "sessions"
    sdir.mkdir(parents=True, exist_ok=True)
    ticks = int(3600 * rate_hz)
    dt = 1.0 / rate_hz
    t = np.arange(ticks) * dt
    base_power = 250 + 60 * np.sin(t / 97.0)[None, :] + 10 * np.arange(gpus)[:, None]
    t0 = time.perf_counter()
    total_bytes = 0
    for k in range(n):
        sid = f"20260101-{k // 3600:02d}{k // 60 % 60:02d}{k % 60:02d}-{k:04x}"
        d = sdir / sid
        if (d / "meta.json").exists():
            total_bytes += sum(f.stat().st_size for f in d.iterdir())
            continue
        d.mkdir(exist_ok=True)
        start = T0 + k * 4000.0
        scale = 0.6 + 0.8 * ((k * 7919) % 1000) / 1000
        p = base_power * scale  # (gpus, ticks)
        e = np.cumsum(p, axis=1) * dt
        df = pl.DataFrame(
            {
                "t_wall": np.tile(start + t, gpus),
                "t_mono": np.tile(1000.0 + t, gpus),
                "seq": np.tile(np.arange(ticks, dtype=np.int64), gpus),
                "device": np.repeat([f"gpu{i}" for i in range(gpus)], ticks),
                "energy_j": e.ravel(),
                "power_w": p.ravel(),
                "util_pct": np.full(gpus * ticks, 95.0),
                "mem_used_b": np.full(gpus * ticks, 40e9),
                "temp_c": np.full(gpus * ticks, 65.0),
                "energy_method": ["simulated"] * (gpus * ticks),
                "power_method": ["simulated"] * (gpus * ticks),
            }
        )
        df = conform_samples(df, sid)  # the store's current schema, whatever it adds
        df.write_parquet(d / "samples.parquet", compression="zstd", statistics=True)
        accs = [0.5 + 0.4 * (1 - 0.6**j) * (0.8 + 0.2 * scale) for j in range(1, 11)]
        ev = pl.DataFrame(
            {
                "t_wall": [start + 360.0 * j for j in range(1, 11)],
                "kind": ["metric"] * 10,
                "source": ["report"] * 10,
                "epoch": [float(j) for j in range(1, 11)],
                "step": [None] * 10,
                "total_epochs": [10] * 10,
                "accuracy": accs,
                "energy_j": [None] * 10,
                "values_json": [None] * 10,
                "pid": [None] * 10,
                "message": [None] * 10,
            },
        )
        ev = conform_events(ev, sid)
        ev.write_parquet(d / "events.parquet")
        devices = [
            {
                "key": f"gpu{i}",
                "kind": "gpu",
                "index": i,
                "name": "NVIDIA H100 80GB HBM3",
                "uuid": f"GPU-{k:04x}-{i}",
                "driver": "550.54.15",
                "power_limit_w": 700.0,
                "energy_method": "simulated",
                "power_method": "simulated",
                "simulated": True,
                "notes": [],
            }
            for i in range(gpus)
        ]
        summary = {
            f"gpu{i}": {
                "energy_j": float(e[i, -1] - e[i, 0]),
                "mean_w": float(p[i].mean()),
                "peak_w": float(p[i].max()),
                "last_w": float(p[i, -1]),
                "duration_s": 3600.0 - dt,
            }
            for i in range(gpus)
        }
        energy = sum(v["energy_j"] for v in summary.values())
        interrupted = k % 100 == 99
        meta = {
            "schema_version": schema.SCHEMA_VERSION,
            "id": sid,
            "name": f"run-{k:04d}",
            "tags": ["bench", f"lr{k % 5}"],
            "command": ["python", "train.py", f"--seed={k}"],
            "mode": "launch",
            "host": f"node{k % 16:02d}",
            "recorder_pid": 4_194_000,
            "recorder_host": "bench-host",
            "simulated": True,
            "period_s": dt,
            "devices": devices,
            "notes": [],
            "baseline": None,
            "started_at": start,
        }
        if interrupted:
            meta["status"] = "running"  # the recorder died: read as interrupted
            live = {"t_wall": start + 3600.0, "devices": summary, "energy_j": energy}
            (d / "live.json").write_text(json.dumps(live))
        else:
            kwh = energy / 3.6e6
            meta.update(
                status="finished",
                exit_code=0,
                ended_at=start + 3600.0,
                summary=summary,
                energy_j=energy,
                accuracy=accs[-1],
                best_accuracy=max(accs),
                model=None,
                co2_g=kwh * 380,
                cost=kwh * 0.25,
                currency="EUR",
                carbon_g_per_kwh=380,
                projected_energy_j=None,
            )
        (d / "meta.json").write_text(json.dumps(meta, indent=1))
        total_bytes += sum(f.stat().st_size for f in d.iterdir())
    return {
        "sessions": n,
        "rows_per_session": ticks * gpus,
        "build_s": time.perf_counter() - t0,
        "disk_mb": total_bytes / 1e6,
    }


def _child_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_screen(store: Path) -> tuple[float, int]:
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-c", CHILD_SCREEN, str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if r.returncode != 0:
        raise SystemExit(f"screen child failed:\n{r.stderr[-3000:]}")
    t_frame, rows = r.stdout.split()[-2:]
    return float(t_frame) - t0, int(rows)


def time_csv(store: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD_CSV, "compare", "--store", str(store), "--format", "csv"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"csv child failed:\n{r.stderr[-3000:]}")
    return dt, r.stdout.count("\n") - 1


def time_cli(store: Path, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "wattui", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"wattui {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return dt, r.stdout


def bench_listing(store: Path, n: int, runs: int) -> tuple[float, float]:
    """Medians of `wattui sessions --format json` (warm cache) and `wattui show ID`."""
    from wattui.sessions import RECORDS_VIEW
    from wattui.store.record_cache import cache_path

    cache_path(store, RECORDS_VIEW).unlink(missing_ok=True)
    cold, out = time_cli(store, "sessions", "--format", "json")
    assert len(json.loads(out)) == n
    warm = [time_cli(store, "sessions", "--format", "json")[0] for _ in range(runs)]
    sid = sorted(p.name for p in (store / "sessions").iterdir())[n // 2]
    shows = []
    for _ in range(runs):
        dt, out = time_cli(store, "show", "--format", "json", sid)
        assert json.loads(out)["id"] == sid
        shows.append(dt)
    med = statistics.median
    print(
        f"  wattui sessions --format json ({n} sessions, whole command): {med(warm):.3f} s "
        f"({min(warm):.3f}-{max(warm):.3f}) with the record cache, {cold:.3f} s without (once)"
        f"  target < 1 s"
    )
    print(
        f"  wattui show --format json ID (whole command):          {med(shows):.3f} s "
        f"({min(shows):.3f}-{max(shows):.3f})  target < 0.3 s"
    )
    return med(warm), med(shows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1.0, help="samples per second (default 1)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--cold", action="store_true", help="drop the row cache before every run (first open)"
    )
    ap.add_argument("--keep", metavar="DIR", help="build the store here and keep it")
    args = ap.parse_args()
    if args.quick:
        args.sessions, args.runs = 100, 3
    tmp = None
    if args.keep:
        store = Path(args.keep)
    else:
        tmp = tempfile.mkdtemp(prefix="wattui-bench-compare-")
        store = Path(tmp)
    try:
        info = build_store(store, args.sessions, args.rate)
        print(
            f"store: {info['sessions']} sessions x 1 h x 8 GPUs at {args.rate:g} Hz "
            f"({info['rows_per_session']:,} sample rows each), "
            f"{info['disk_mb']:.0f} MB on disk, built in {info['build_s']:.1f} s"
        )
        from wattui.analysis import table as cmp
        from wattui.store.reader import Session

        loads, cold_loads = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            table = cmp.load_table(store, cache=False)
            cold_loads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            table = cmp.load_table(store)
            loads.append(time.perf_counter() - t0)
        assert table.frame.height == args.sessions, table.frame.height
        sdir = sorted((store / "sessions").iterdir())[0]
        reads = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            df = Session.open(sdir).samples()
            reads.append(time.perf_counter() - t0)
        screens, csvs, screen_cpu, csv_cpu = [], [], [], []
        cache_dir = store / ".cache"
        for _ in range(args.runs):
            if args.cold:
                shutil.rmtree(cache_dir, ignore_errors=True)
            c0 = _child_cpu()
            s, rows = time_screen(store)
            screen_cpu.append(_child_cpu() - c0)
            assert rows == args.sessions, rows
            screens.append(s)
            if args.cold:
                shutil.rmtree(cache_dir, ignore_errors=True)
            c0 = _child_cpu()
            c, lines = time_csv(store)
            csv_cpu.append(_child_cpu() - c0)
            assert lines == args.sessions, lines
            csvs.append(c)
        med = statistics.median
        state = "cold: row cache dropped before each run" if args.cold else "warm row cache"
        print(f"runs: {args.runs} (median; min-max), {state}")
        print(
            f"  open comparison screen (fresh process to table shown): {med(screens):.3f} s "
            f"({min(screens):.3f}-{max(screens):.3f})  target < 1 s"
        )
        print(
            f"  wattui compare --format csv (whole command):           {med(csvs):.3f} s "
            f"({min(csvs):.3f}-{max(csvs):.3f})  target < 1 s"
        )
        print(
            f"  CPU time of those processes (less sensitive to a busy machine): "
            f"screen {med(screen_cpu):.3f} s (incl. app shutdown), csv {med(csv_cpu):.3f} s"
        )
        print(f"  machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"  load_table in process ({args.sessions} sessions): {med(loads):.3f} s with the "
            f"row cache, {med(cold_loads):.3f} s without (every meta.json parsed)"
        )
        print(f"  details: read one session's samples ({df.height:,} rows):  {med(reads):.3f} s")
        listing, show = bench_listing(store, args.sessions, args.runs)
        ok = med(screens) < 1.0 and med(csvs) < 1.0 and listing < 1.0 and show < 0.3
        print("PASS" if ok else "SLOWER THAN TARGET")
        return 0 if ok else 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
