"""Overhead of ``wattui.report`` per call, with no recorder and with a recorder reading.

    python bench/bench_report.py [--calls 100000] [--runs 5]

No recorder: nobody watches, events go to the in-memory ring buffer (target < 5 us/call).
With recorder: ``WATTUI_CHANNEL_DIR`` is set as a launching recorder would, every call writes
one JSON line, and a separate reader process polls the channel 10 times a second
(target < 50 us/call). Prints the median over several runs of microseconds per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READER = """
import sys, time
from wattui.metrics.channel import ReportChannel
pid, d, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ch = ReportChannel(lambda: [pid], d, mark=False)
n, deadline = 0, time.time() + 600
print("ready", flush=True)
while n < want and time.time() < deadline:
    n += len(ch.poll())
    time.sleep(0.1)
print(n, flush=True)
"""


def _time_calls(report, calls: int) -> float:
    t0 = time.perf_counter()
    for i in range(calls):
        report(accuracy=0.91, epoch=3, step=i, loss=0.3)
    return (time.perf_counter() - t0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for k in ("WATTUI_CHANNEL_DIR", "WATTUI_SESSION"):
            os.environ.pop(k, None)
        os.environ["XDG_RUNTIME_DIR"] = tmp  # an empty runtime dir: nobody watches
        from wattui import _report

        idle = []
        for _ in range(args.runs):
            _report._st.reset()
            idle.append(_time_calls(_report.report, args.calls))
        assert not _report.stats()["attached"]

        chan = Path(tmp) / "chan"
        chan.mkdir(mode=0o700)
        os.environ["WATTUI_CHANNEL_DIR"] = str(chan)
        busy = []
        total = 0
        _report._st.reset()
        reader = subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                str(os.getpid()),
                str(chan),
                str(args.calls * args.runs),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        reader.stdout.readline()
        for _ in range(args.runs):
            busy.append(_time_calls(_report.report, args.calls))
            total += args.calls
        assert _report.stats()["attached"], _report.stats()
        got = int(reader.stdout.readline() or 0)
        reader.wait(timeout=60)
        _report._close()

    med_idle, med_busy = statistics.median(idle), statistics.median(busy)
    print(f"wattui.report overhead, {args.calls} calls x {args.runs} runs (median us/call)")
    print(
        f"  no recorder  : {med_idle:6.2f} us/call  (target < 5)   "
        f"runs: {', '.join(f'{x:.2f}' for x in idle)}"
    )
    print(
        f"  with recorder: {med_busy:6.2f} us/call  (target < 50)  "
        f"runs: {', '.join(f'{x:.2f}' for x in busy)}"
    )
    print(f"  reader received {got} of {total} events")
    if got != total:
        print(f"LOST EVENTS: {total - got}")
        sys.exit(2)
    if not (med_idle < 5 and med_busy < 50):
        print("SLOWER THAN TARGET")
        sys.exit(1)


if __name__ == "__main__":
    main()
