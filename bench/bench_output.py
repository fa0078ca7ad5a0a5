"""Does recording slow a run that floods its output? 300,000 lines alone vs under
``wattui record``, and is ``output.log`` complete?

    python bench/bench_output.py [--lines 300000] [--runs 5] [--kind plain|accuracy] [--unbuffered]

Each round runs the same child twice, alone and under ``wattui record --simulate``, in
alternating order, both with stdout to a file (as a terminal or a log would take it).
The child measures its own print time (first line to last flush); wall time of the whole
command is measured too (recorder start and end included). ``--kind accuracy`` prints
lines that all look like validation accuracy (the worst case for the parser) and reports
the recorder's peak memory. Prints medians; target: print time under record <= 2x alone,
output.log holding every line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys, time
n, kind = int(sys.argv[1]), sys.argv[2]
w = sys.stdout.write
t0 = time.perf_counter()
if kind == "accuracy":
    for i in range(n):
        w(f"epoch {i // 1000} step {i} val_accuracy: {(i % 1000) / 1000:.4f}\n")
else:
    for i in range(n):
        w(f"step {i} loss {1.0 / (i + 1):.6f}\n")
sys.stdout.flush()
print(f"PRINT_TIME {time.perf_counter() - t0:.4f}", file=sys.stderr)
"""


def _print_time(stderr: str) -> float:
    for line in stderr.splitlines():
        if line.startswith("PRINT_TIME "):
            return float(line.split()[1])
    raise RuntimeError(f"the child did not report its time: {stderr[-500:]}")


def _peak_rss_mb(pid: int, stop) -> float:
    """Peak resident memory (MB) of process ``pid``, sampled until ``stop()``."""
    import psutil

    peak = 0
    try:
        p = psutil.Process(pid)
        while not stop():
            peak = max(peak, p.memory_info().rss)
            time.sleep(0.02)
    except psutil.Error:
        pass
    return peak / 1e6


def one_round(tmp: Path, child: Path, lines: int, kind: str, k: int, unbuffered: bool) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:  # one write per line, as a run with PYTHONUNBUFFERED=1 does
        env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, str(child), str(lines), kind]
    out = tmp / "out.txt"
    res: dict = {}
    order = ("alone", "record") if k % 2 == 0 else ("record", "alone")
    for mode in order:
        store = tmp / f"store{k}"
        argv = cmd if mode == "alone" else [
            sys.executable, "-m", "wattui", "record", "--store", str(store), "--simulate", "--", *cmd
        ]
        with open(out, "wb") as f:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.PIPE, env=env, text=True)
            peak = _peak_rss_mb(p.pid, lambda p=p: p.poll() is not None) if mode == "record" else 0
            _, err = p.communicate()
            wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{mode} failed: {err[-500:]}")
        res[f"{mode}_print_s"] = _print_time(err)
        res[f"{mode}_wall_s"] = wall
        if mode == "record":
            res["peak_rss_mb"] = peak
            (sdir,) = (store / "sessions").iterdir()
            log = (sdir / "output.log").read_bytes()
            res["output_log_lines"] = log.count(b"\n") - 1  # minus the PRINT_TIME line
            res["stdout_lines"] = out.read_bytes().count(b"\n")
            meta = json.loads((sdir / "meta.json").read_text())
            res["not_parsed"] = meta.get("output_lines_not_parsed", 0)
            res["output_dropped_bytes"] = meta.get("output_dropped_bytes", 0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kind", choices=("plain", "accuracy"), default="plain")
    ap.add_argument("--unbuffered", action="store_true", help="the child writes every line at once")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        child = tmp / "flood.py"
        child.write_text(CHILD)
        rounds = [one_round(tmp, child, args.lines, args.kind, k, args.unbuffered) for k in range(args.runs)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    complete = all(
        r["output_log_lines"] == args.lines and r["stdout_lines"] == args.lines for r in rounds
    )
    how = ", unbuffered" if args.unbuffered else ""
    print(f"{args.lines} {args.kind} lines{how}, {args.runs} rounds (medians):")
    print(f"  print time alone      {med('alone_print_s'):.3f} s")
    ratios = [r["record_print_s"] / r["alone_print_s"] for r in rounds]
    print(f"  print time, recorded  {med('record_print_s'):.3f} s  "
          f"(median of the rounds' ratios {statistics.median(ratios):.2f}x; per round: "
          + ", ".join(f"{x:.2f}" for x in ratios) + ")")
    print(f"  wall alone / recorded {med('alone_wall_s'):.3f} s / {med('record_wall_s'):.3f} s "
          "(recorded includes the recorder's start and end)")
    print(f"  recorder peak memory  {med('peak_rss_mb'):.0f} MB")
    print(f"  output.log complete   {complete} (dropped bytes: "
          f"{max(r['output_dropped_bytes'] for r in rounds)})")
    print(f"  lines not parsed      {med('not_parsed'):.0f} of {args.lines} (shed, counted)")


if __name__ == "__main__":
    main()
