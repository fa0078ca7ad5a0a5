"""The whole `wattui record` process's steady CPU, side by side with CodeCarbon's.

    python bench/bench_recorder.py [--seconds 20] [--runs 3] [--gpus 8]
    python bench/bench_recorder.py --seconds 2 --warmup 1 --runs 1 --profile-seconds 2  # short

Both measure the same GPUs at the same time on the same machine: N GPUs served by the
test suite's stand-in NVML library (tests/nvml_stub; the real pynvml binding and ctypes
calls, loaded by both through LD_LIBRARY_PATH; a real driver's own cost comes on top and
is not measured). wattui records a run (`wattui record -- python -c 'sleep'`) at its
default period; CodeCarbon (``OfflineEmissionsTracker``, ``measure_power_secs=1``, its
shortest documented interval, in a process of its own) tracks the machine. Each figure is
the process's own CPU time (all its threads; the kernel's per-process CPU clock, in ns,
not /proc/PID/stat's 10 ms ticks) over a window that starts after a warm-up, as % of one
core. Prints the medians of several runs, the ratio wattui / CodeCarbon, the load average
during the runs, and wattui's CPU per thread (threads named through PR_SET_NAME by a
wrapper that changes nothing else; /proc/PID/task/TID/schedstat, ns).

Then one more recording with every thread named and profiled: the CPU of each part
(sampler, intake, pumps, output log, main) over a steady window, and the top cProfile
entries of the whole recording (start-up excluded). CodeCarbon is optional
(`pip install codecarbon`, here or in a venv of its own named by `--peer-python`): without
it the bench prints wattui's figures and says so.

Target: wattui <= CodeCarbon (ratio <= 1.0).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

RUN = [sys.executable, "-c", "import time; time.sleep(1e6)"]

PEER = r"""
import logging, sys, time
logging.disable(logging.WARNING)
from codecarbon import OfflineEmissionsTracker
t = OfflineEmissionsTracker(country_iso_code="USA", measure_power_secs=1, save_to_file=False,
                            log_level="error", tracking_mode="machine")
t.start()
print("READY", flush=True)
time.sleep(1e6)
"""

# Runs `wattui record` in this process with every thread named (Linux: /proc shows the
# name), nothing else changed: the measured runs, so each thread's CPU can be told apart.
NAMED = r"""
import ctypes, sys, threading
libc = ctypes.CDLL(None)
def named(name):
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
orig_run = threading.Thread.run
def run(self):
    named(self.name)
    orig_run(self)
threading.Thread.run = run
named("main")
from wattui import cli
sys.exit(cli.main(sys.argv[1:]))
"""

# Runs `wattui record` in this process with every thread named (Linux: /proc shows the
# name) and profiled from its start; the main thread is profiled from the first sample.
PROFILED = r"""
import cProfile, ctypes, pstats, sys, threading, time
libc = ctypes.CDLL(None)
out, argv = sys.argv[1], sys.argv[2:]
profiles = []
def named(name):
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
orig_run = threading.Thread.run
def run(self):
    named(self.name)
    pr = cProfile.Profile(time.thread_time)  # CPU time, not time spent waiting
    profiles.append(pr)
    pr.enable()
    try:
        orig_run(self)
    finally:
        pr.disable()
threading.Thread.run = run
named("main")
from wattui import cli
from wattui.record import recorder
orig_begin = recorder.Recorder._begin_sampling
orig_finish = recorder.Recorder._finish
main_pr = cProfile.Profile(time.thread_time)
def begin(self):
    orig_begin(self)
    main_pr.enable()
def finish(self, *a, **k):
    main_pr.disable()  # the end (compaction) is not steady state
    return orig_finish(self, *a, **k)
recorder.Recorder._begin_sampling = begin
recorder.Recorder._finish = finish
try:
    code = cli.main(argv)
finally:
    main_pr.disable()
    st = pstats.Stats(main_pr)
    for pr in profiles:
        try:
            st.add(pr)
        except Exception:
            pass
    st.dump_stats(out)
sys.exit(code)
"""

# The sampler thread's CPU split without a profiler's inflation: timers (CPU time of the
# calling thread) around the parts of a tick (the reads) and of the once-a-second batch
# (decoding the reads, the recorder's rows and totals, the files), over a steady window
# after a warm-up; what is left is waking up. Then an idle Python thread that only wakes
# at the same period and sleeps as the sampler does (the floor of any 5 Hz loop).
BREAKDOWN = r"""
import os, signal, sys, threading, time
warmup, seconds, period, argv = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
from wattui import cli, sampler
from wattui.record import recorder
from wattui.sources.nvml import NvmlSource
from wattui.sources.process import ProcessTreeSource
from wattui.store import summary, writer
PARTS = [  # (class, method, label, depth): depth 0 parts add up to the thread's work
    (sampler.Sampler, "_read", "tick: the reads (ticks this thread takes)", 0),
    (NvmlSource, "capture", "NVML capture (calls, a copy of their fields)", 1),
    (sampler.Sampler, "_take_native", "ticks the native thread took: drained, the newest made full", 0),
    (NvmlSource, "_read_slow", "once a second: utilisation, memory, temperature, processes", 1),
    (ProcessTreeSource, "capture", "the run's process tree (full ticks: once a second)", 1),
    (sampler.Sampler, "deliver", "batch (about once a second)", 0),
    (NvmlSource, "decode", "NVML decode (figures, shares, readings)", 1),
    (recorder.Recorder, "_on_samples", "recorder: totals, rows, files", 1),
    (summary.SessionStats, "add", "totals", 2),
    (writer.SessionWriter, "add_samples", "rows (CSV text)", 2),
    (writer.SessionWriter, "flush", "flush: samples.live.csv, live.json", 2),
    (writer, "append_whole", "appends to samples.live.csv (an fsync every 10 s)", 3),
    (writer, "write_json_atomic", "live.json", 3),
]
acc = {}
main_tid = {}
def timed(cls, name, label):
    orig = getattr(cls, name)
    def run(*a, **k):
        if threading.get_native_id() != main_tid.get("sampler"):
            return orig(*a, **k)
        t0 = time.thread_time()
        try:
            return orig(*a, **k)
        finally:
            acc[label] = acc.get(label, 0.0) + time.thread_time() - t0
    setattr(cls, name, run)
for cls, name, label, _ in PARTS:
    timed(cls, name, label)
orig_run = sampler.Sampler._run
def _run(self):
    main_tid["sampler"] = threading.get_native_id()
    orig_run(self)
sampler.Sampler._run = _run
def thread_s(tid):
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9
def idle_floor():
    lock = threading.Lock()
    lock.acquire()
    out = {}
    def loop():
        out["tid"] = threading.get_native_id()
        while not lock.acquire(timeout=period):
            pass
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    time.sleep(1.0)
    a, t0 = thread_s(out["tid"]), time.monotonic()
    time.sleep(seconds)
    b, t1 = thread_s(out["tid"]), time.monotonic()
    lock.release()
    return 100 * (b - a) / (t1 - t0)
def ticker_tid():
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() == "wattui-ticker":
                    return tid
        except OSError:
            pass
    return None
def measure():
    time.sleep(warmup)
    acc.clear()
    tt = ticker_tid()
    a, t0 = thread_s(main_tid["sampler"]), time.monotonic()
    ta = thread_s(tt) if tt else 0.0
    time.sleep(seconds)
    b, t1 = thread_s(main_tid["sampler"]), time.monotonic()
    tb = thread_s(tt) if tt else 0.0
    got = dict(acc)
    wall = t1 - t0
    total = 100 * (b - a) / wall
    lines = [f"sampler thread {total:.3f}"]
    work = 0.0
    for _, _, label, depth in PARTS:
        pct = 100 * got.get(label, 0.0) / wall
        work += pct if depth == 0 else 0.0
        lines.append("  " * (depth + 1) + f"{label} {pct:.3f}")
    lines.append(f"  waking up and the rest {total - work:.3f}")
    lines.append(f"  (an idle thread waking every {period:g} s: {idle_floor():.3f})")
    if tt:
        lines.append(f"native ticker thread (C: the light ticks' field calls) {100 * (tb - ta) / wall:.3f}")
    else:
        lines.append("native ticker thread: none (the sampler thread takes every tick)")
    print("BREAKDOWN " + " | ".join(lines), flush=True)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=measure, daemon=True).start()
sys.exit(cli.main(argv))
"""


def breakdown_run(env: dict, store: Path, warmup: float, seconds: float) -> None:
    from wattui.sampler import DEFAULT_PERIOD_S

    period = float(PERIOD[1]) if PERIOD else DEFAULT_PERIOD_S
    args = ["record", "--session-id", "bench-breakdown", *PERIOD, "--", *RUN]
    p = subprocess.run([sys.executable, "-c", BREAKDOWN, str(warmup), str(seconds), str(period),
                        *args], env=env, capture_output=True, text=True, cwd=REPO,
                       timeout=warmup + 2 * seconds + 120)
    line = next((x for x in p.stdout.splitlines() if x.startswith("BREAKDOWN")), None)
    if line is None:
        print(f"breakdown: no figures ({p.stderr.strip()[-300:]})")
        return
    print("breakdown: the sampler's threads' CPU, % of one core, no profiler (timers around "
          "the calls):")
    for part in line.removeprefix("BREAKDOWN ").split(" | "):
        print("  " + part)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (schedstat: ns; else /proc stat ticks)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat", "rb") as f:
                raw = f.read()
            try:
                with open(f"{base}/schedstat", "rb") as f:
                    secs = int(f.read().split()[0]) / 1e9
            except OSError:
                fields = raw.rsplit(b")", 1)[1].split()
                secs = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
        name = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
        out[name] = out.get(name, 0.0) + secs
    return out


PEER_PYTHON = [sys.executable]  # --peer-python: CodeCarbon in a venv of its own


def peer_available() -> bool:
    p = subprocess.run([PEER_PYTHON[0], "-c", "import codecarbon"], capture_output=True)
    return p.returncode == 0


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


PERIOD: list[str] = []  # --period S, when asked for


def start_wattui(env: dict, store: Path, sid: str, argv_prefix: list[str] | None = None):
    args = ["record", "--session-id", sid, *PERIOD, "--", *RUN]
    cmd = (argv_prefix or [sys.executable, "-m", "wattui"]) + args
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         cwd=REPO)
    live = store / "sessions" / sid / "live.json"
    try:
        wait_for(lambda: live.exists() or p.poll() is not None, 60, "the recorder's first flush")
    except RuntimeError:
        p.kill()
        raise
    if p.poll() is not None:
        raise RuntimeError(f"wattui record exited: {p.stderr.read().decode()[-2000:]}")
    return p


def stop_wattui(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGINT)  # forwarded to the run; the session is finished
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start_peer(env: dict):
    p = subprocess.Popen([PEER_PYTHON[0], "-c", PEER], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if "READY" not in line:
        p.kill()
        err = p.stderr.read()[-1500:]
        raise RuntimeError(f"CodeCarbon did not start: {err}")
    return p


def one_run(env: dict, store: Path, k: int, warmup: float, seconds: float, peer: bool):
    """wattui's and CodeCarbon's CPU over the same window (% of one core), the load, and
    wattui's CPU per thread name."""
    from wattui.sources.process import process_cpu_s as cpu_s

    w = start_wattui(env, store, f"bench-{k}", [sys.executable, "-c", NAMED])
    c = None
    try:
        if peer:
            c = start_peer(env)
        time.sleep(warmup)
        t0 = time.monotonic()
        w0, th0 = cpu_s(w.pid), thread_cpu(w.pid)
        c0 = cpu_s(c.pid) if c else None
        load0 = os.getloadavg()[0]
        time.sleep(seconds)
        t1 = time.monotonic()
        w1, th1 = cpu_s(w.pid), thread_cpu(w.pid)
        c1 = cpu_s(c.pid) if c else None
        load = (load0 + os.getloadavg()[0]) / 2
    finally:
        stop_wattui(w)
        if c is not None:
            c.kill()
            c.wait()
    wall = t1 - t0
    threads = {n: 100 * (th1[n] - th0.get(n, 0.0)) / wall for n in th1}
    return 100 * (w1 - w0) / wall, (100 * (c1 - c0) / wall if c else None), load, threads


def profile_run(env: dict, store: Path, warmup: float, seconds: float, top: int) -> None:
    out = store / "recorder.prof"
    p = start_wattui(env, store, "bench-profile",
                     [sys.executable, "-c", PROFILED, str(out)])
    try:
        time.sleep(warmup)
        t0, a = time.monotonic(), thread_cpu(p.pid)
        time.sleep(seconds)
        t1, b = time.monotonic(), thread_cpu(p.pid)
    finally:
        stop_wattui(p)
    wall = t1 - t0
    print(f"profile: CPU per thread over {wall:.0f} s of steady recording (the profiler's "
          "own cost inflates it: read the shares)")
    parts = {n: 100 * (b[n] - a.get(n, 0.0)) / wall for n in b}
    total = sum(parts.values()) or 1e-9
    for n, pct in sorted(parts.items(), key=lambda x: -x[1]):
        print(f"  thread {n:<16} {pct:6.3f}% of a core ({100 * pct / total:4.1f}%)")
    if not out.exists():
        print("  (no cProfile output: the recorder did not finish cleanly)")
        return
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(str(out), stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    start = text.find("   ncalls")
    print(f"profile: top {top} functions by own CPU time, the recording from its first sample to its end")
    for line in text[start:].splitlines():
        if line.strip():
            print("  " + line.replace(str(REPO) + "/", "")[:150])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--profile-seconds", type=float, default=10.0, help="0: no profile")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-peer", action="store_true", help="do not run CodeCarbon")
    ap.add_argument("--period", type=float, help="wattui's sampling period (default: its own)")
    ap.add_argument("--peer-python", help="the Python that has CodeCarbon (default: this one)")
    args = ap.parse_args()
    if args.peer_python:
        PEER_PYTHON[0] = args.peer_python
    if args.period:
        PERIOD[:] = ["--period", str(args.period)]

    from nvml_stub.build import FakeNvml, StubUnavailable

    from wattui.sampler import DEFAULT_PERIOD_S

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        try:
            fake = FakeNvml.create(d, count=args.gpus)
        except StubUnavailable as e:
            print(f"cannot build the stand-in NVML: {e}")
            return 0
        store = d / "store"
        env = fake.subprocess_env()
        env.update(WATTUI_HOME=str(store), WATTUI_CHANNEL_DIR=str(d / "channel"),
                   PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
        peer = not args.no_peer and peer_available()
        period = f"--period {args.period:g} s" if args.period else f"its default period ({DEFAULT_PERIOD_S} s)"
        print(f"recorder steady CPU, {args.gpus} GPUs on the stand-in NVML, wattui at "
              f"{period}, CodeCarbon at 1 s; "
              f"{args.runs} x {args.seconds:g} s after {args.warmup:g} s warm-up, "
              f"{os.cpu_count()} CPUs")
        if not peer:
            print("  CodeCarbon: " + ("not run (--no-peer)" if args.no_peer else
                                      "not installed (pip install codecarbon): no ratio"))
        ws, cs, loads = [], [], []
        per_thread: dict[str, list[float]] = {}
        for k in range(args.runs):
            w, c, load, threads = one_run(env, store, k, args.warmup, args.seconds, peer)
            for n, pct in threads.items():
                per_thread.setdefault(n, []).append(pct)
            ws.append(w)
            loads.append(load)
            if c is not None:
                cs.append(c)
            print(f"  run {k + 1}: wattui {w:.3f}%"
                  + (f", CodeCarbon {c:.3f}%, ratio {w / c:.2f}" if c else "")
                  + f", load {load:.2f}")
        wm = statistics.median(ws)
        print(f"wattui record: median {wm:.3f}% of one core "
              f"(runs: {', '.join(f'{x:.3f}' for x in ws)})")
        if cs:
            cm = statistics.median(cs)
            print(f"CodeCarbon (1 s): median {cm:.3f}% of one core "
                  f"(runs: {', '.join(f'{x:.3f}' for x in cs)})")
            print(f"ratio wattui/CodeCarbon: {wm / cm:.2f} (target <= 1.0)")
        print(f"load average (1 min) during the runs: median {statistics.median(loads):.2f}")
        print("wattui per thread (schedstat, ns; median of the runs, % of one core; threads "
              "that ended before the window's end are in the total only):")
        for n, v in sorted(per_thread.items(), key=lambda x: -statistics.median(x[1])):
            print(f"  {n:<16} {statistics.median(v):6.3f}%  (runs: {', '.join(f'{x:.3f}' for x in v)})")
        if args.profile_seconds > 0:
            breakdown_run(env, store, args.warmup, args.profile_seconds)
            profile_run(env, store, args.warmup, args.profile_seconds, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
