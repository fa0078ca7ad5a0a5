"""Benchmarks of the live screen. Prints medians.

    python bench/bench_live.py            # full: 3 x 20 s CPU runs, 72-h memory replay
    python bench/bench_live.py --quick    # 1 x 5 s and a 1-hour session: a smoke test
    python bench/bench_live.py --only terminal --profile 10   # vs nvitop, with a profile

1. CPU: a real background recorder (--simulate, default 0.2 s period) writes a session;
   a headless viewer at the default refresh (1 Hz) watches it. Its process CPU time
   over a 20 s window after warm-up, as % of one core (target < 3 %).
2. First frame: `wattui view ID` and `wattui --simulate -- CMD` in a pseudo-terminal;
   seconds from spawning the command to the screen's first frame (target < 0.5 s).
3. Terminal, side by side with nvitop: a recorder of 8 GPUs on the test suite's stand-in
   NVML (tests/nvml_stub) and `wattui view ID` in a real pseudo-terminal (160x48 by
   default); the viewer's whole-process CPU in steady state, and nvitop's on the same
   stand-in NVML at its default 2 s refresh in another terminal over the same seconds;
   the ratio run for run (target <= 1.0), how much of wattui's is its UI thread (the rest:
   the snapshot worker, Textual's input and writer threads), and each one's first frame
   (wattui: the footer; target < 0.5 s). nvitop installs from
   PyPI into its own venv (~/.cache/wattui-bench/nvitop) unless --no-peer; --quick uses it
   only if it is there already. --profile S: one more viewer run under cProfile (the UI
   thread and the snapshot worker, from the warm-up on), top functions by own CPU time.
4. Memory: a 72-hour simulated session (1 s ticks x 1 GPU = 259,200 rows, plus the
   process-tree rows) written straight to Parquet with Polars (finished) and to the live
   CSV (running); the viewer replays it; peak RSS after the first full snapshot
   (target < 150 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CHILD = r"""
import json, sys, time
from pathlib import Path
from wattui.tui.app import WattuiApp
mode, store, sdir, warm, window = sys.argv[1:6]
warm, window = float(warm), float(window)
out = {}
class Bench(WattuiApp):
    def on_mount(self):
        self.set_timer(warm, self._start)
    def _start(self):
        out["applied0"] = self.live.snapshots_applied
        out["cpu0"] = time.process_time(); out["t0"] = time.monotonic()
        self.set_timer(window, self._stop)
    def _stop(self):
        out["cpu"] = time.process_time() - out["cpu0"]; out["wall"] = time.monotonic() - out["t0"]
        out["applied"] = self.live.snapshots_applied - out["applied0"]
        out["history_points"] = len(self.live.snapshot.history) if self.live.snapshot else 0
        out["status"] = self.live.snapshot.status if self.live.snapshot else None
        # VmHWM, not ru_maxrss: the latter survives exec and would count the parent's peak
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    out["rss_mb"] = int(line.split()[1]) / 1024
                if line.startswith("VmHWM"):
                    out["maxrss_mb"] = int(line.split()[1]) / 1024
        self.exit()
Bench(Path(store), Path(sdir)).run(headless=True, size=(120, 40))
print("BENCH " + json.dumps(out))
"""


def headless(store: Path, sdir: Path, warm: float, window: float) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", CHILD, "x", str(store), str(sdir), str(warm), str(window)],
        capture_output=True,
        text=True,
        timeout=warm + window + 120,
    )
    for line in p.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"headless viewer failed: {p.stderr[-2000:]}")


def start_recorder(store: Path, seconds: int) -> Path:
    from wattui.cli.record import detach
    from wattui.record.options import RecordOptions
    from wattui.store.paths import new_session_id, sessions_dir

    sid = new_session_id()
    opts = RecordOptions(store=store, simulate=1, session_id=sid)
    detach(
        ["--store", str(store), "--simulate", "1", "--", "sleep", str(seconds)], opts, quiet=True
    )
    return sessions_dir(store) / sid


def stop_recorder(sdir: Path) -> None:
    meta = json.loads((sdir / "meta.json").read_text())
    try:
        os.kill(meta["recorder_pid"], signal.SIGINT)
        psutil.Process(meta["recorder_pid"]).wait(20)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass


def bench_cpu(store: Path, runs: int, window: float) -> list[dict]:
    sdir = start_recorder(store, int(runs * (window + 15) + 30))
    try:
        return [headless(store, sdir, warm=3.0, window=window) for _ in range(runs)]
    finally:
        stop_recorder(sdir)


def first_frame(args: list[str], store: Path) -> float:
    import pexpect

    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    compiled_like_an_install(env)
    t0 = time.monotonic()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "wattui", *args],
        env=env,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=30,
    )
    child.expect("Quit")  # the footer: the first frame is on the terminal
    dt = time.monotonic() - t0
    child.send("q")
    try:
        child.expect(["leave it running", pexpect.EOF], timeout=10)
        child.send("l")
        child.expect(pexpect.EOF, timeout=10)
    except pexpect.TIMEOUT:
        pass
    child.close(force=True)
    return dt


# -- 3. the terminal, side by side with nvitop --------------------------------------------------
NVITOP_VENV = Path(
    os.environ.get("WATTUI_BENCH_CACHE", Path.home() / ".cache" / "wattui-bench")
) / "nvitop"

# `wattui view` with its UI thread and its snapshot worker profiled (CPU time) from the
# warm-up on: the start-up is not steady state.
PROFILED_VIEW = r"""
import cProfile, pstats, sys, time
out, warm, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
t0 = time.monotonic()
from wattui.tui import live
from wattui.view import snapshot
ui, worker, on = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time), set()
def hooked(orig, pr, name):
    def f(*a, **k):
        if name not in on and time.monotonic() - t0 > warm:
            on.add(name); pr.enable()
        return orig(*a, **k)
    return f
live.LiveScreen._apply_snapshot = hooked(live.LiveScreen._apply_snapshot, ui, "ui")
snapshot.SnapshotBuilder.poll = hooked(snapshot.SnapshotBuilder.poll, worker, "worker")
from wattui import cli
try:
    code = cli.main(argv)
finally:
    ui.disable(); worker.disable()
    st = None
    for pr in (ui, worker):
        try:
            st = pstats.Stats(pr) if st is None else st.add(pr)
        except TypeError:  # never enabled: the run ended before the warm-up did
            pass
    if st is not None:
        st.dump_stats(out)
sys.exit(code)
"""


def main_thread_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process's main thread (the UI's event loop), None where /proc has
    no per-thread times."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nvitop_bin(install: bool) -> Path | None:
    """nvitop in its own venv (it must not share wattui's packages), installed on demand."""
    exe = NVITOP_VENV / "bin" / "nvitop"
    if exe.exists() or not install:
        return exe if exe.exists() else None
    print(f"installing nvitop from PyPI into {NVITOP_VENV} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(NVITOP_VENV)], check=True)
        subprocess.run(
            [str(NVITOP_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "nvitop"],
            check=True, timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as e:
        print(f"  nvitop could not be installed ({e}): no ratio")
        return None
    return exe if exe.exists() else None


class Pty:
    """A program in a pseudo-terminal of ``size`` (columns, rows), its screen read as a
    terminal would read it."""

    def __init__(self, argv: list[str], env: dict, size: tuple[int, int], first: str,
                 quit_keys: tuple[str, ...] = ("q",)):
        import pexpect

        self.quit_keys = quit_keys
        t0 = time.monotonic()
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(size[1], size[0]),
                                   encoding="utf-8", codec_errors="replace", timeout=60)
        self.child.expect_exact(first)
        self.first_frame_s = time.monotonic() - t0  # from exec to `first` on the screen
        self.alive = True

    def read(self, timeout: float) -> None:
        import pexpect

        if not self.alive:
            return
        try:
            self.child.read_nonblocking(1 << 16, timeout=timeout)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            self.alive = False

    def cpu_s(self) -> float | None:
        from wattui.sources.process import process_cpu_s

        return process_cpu_s(self.child.pid)

    def main_cpu_s(self) -> float | None:
        return main_thread_cpu_s(self.child.pid)

    def close(self) -> None:
        import pexpect

        try:
            for k in self.quit_keys:
                if not self.alive:
                    break
                self.child.send(k)
                drain([self], 0.5)
            if self.alive:
                self.child.expect(pexpect.EOF, timeout=20)
        except (pexpect.TIMEOUT, OSError):
            pass
        finally:
            self.child.close(force=True)


def drain(ptys: list[Pty], seconds: float) -> None:
    """Read what the programs draw for ``seconds``."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        for p in ptys:
            p.read(min(0.1, left) / len(ptys))


def side_by_side(programs: list[tuple[list[str], str, tuple[str, ...]]], env: dict,
                 size: tuple[int, int], warm: float, window: float) -> list[dict]:
    """Each program (argv, its first frame's marker, its quit keys) in its own terminal,
    all at once: first frames (started one after the other), then each one's
    whole-process CPU over the same ``window`` seconds after ``warm``, so a busy machine
    weighs on all of them alike."""
    ptys: list[Pty] = []
    try:
        for argv, first, keys in programs:
            ptys.append(Pty(argv, env, size, first, keys))
        drain(ptys, warm)
        m0, c0, w0 = [p.main_cpu_s() for p in ptys], [p.cpu_s() for p in ptys], time.monotonic()
        drain(ptys, window)
        m1, c1, w1 = [p.main_cpu_s() for p in ptys], [p.cpu_s() for p in ptys], time.monotonic()
        load = os.getloadavg()[0]
    finally:
        for p in ptys:
            p.close()
    return [
        {"first_frame_s": p.first_frame_s, "cpu_pct": 100 * (b - a) / (w1 - w0), "load": load,
         # the main thread (the UI's event loop: applying snapshots, Textual's redraws);
         # the rest is the snapshot worker and Textual's input and writer threads
         "main_thread_cpu_pct": None if ma is None or mb is None else 100 * (mb - ma) / (w1 - w0)}
        for p, a, b, ma, mb in zip(ptys, c0, c1, m0, m1, strict=True)
    ]


def compiled_like_an_install(env: dict) -> None:
    """wattui's modules byte-compiled, as pip leaves an installed package (and nvitop):
    where PYTHONDONTWRITEBYTECODE is set, a source checkout would otherwise compile every
    module at every start, which no installed copy does."""
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "wattui")],
                   env=env, check=False, stdout=subprocess.DEVNULL)


def bench_terminal(args) -> dict:
    """wattui view vs nvitop in a real terminal, 8 GPUs on the stand-in NVML."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from nvml_stub.build import FakeNvml, StubUnavailable

    out: dict = {}
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            fake = FakeNvml.create(tmp, count=args.gpus)
        except StubUnavailable as e:
            print(f"terminal: cannot build the stand-in NVML ({e}): skipped")
            return out
        store = tmp / "store"
        env = fake.subprocess_env()
        env.update(WATTUI_HOME=str(store), TERM="xterm-256color", COLUMNS=str(size[0]),
                   LINES=str(size[1]), PYTHONPATH=str(HERE.parent))
        compiled_like_an_install(env)
        sid = "bench-terminal"
        rec = subprocess.Popen(
            [sys.executable, "-m", "wattui", "record", "--session-id", sid, "--",
             sys.executable, "-c", "import time; time.sleep(1e6)"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        live = store / "sessions" / sid / "live.json"
        end = time.monotonic() + 60
        while not live.exists() and rec.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if not live.exists():
            rec.kill()
            raise RuntimeError(f"the recorder did not start: {rec.stderr.read().decode()[-2000:]}")
        nvitop = None if args.no_peer else nvitop_bin(install=not args.quick)
        print(f"terminal: {args.gpus} GPUs on the stand-in NVML, {size[0]}x{size[1]} pty, "
              f"{args.runs} x {args.window:g} s after {args.warm:g} s warm-up, "
              f"{os.cpu_count()} CPUs" + ("" if nvitop else "; nvitop not available: no ratio"))
        view = [sys.executable, "-m", "wattui", "view", sid, *args.view_args]
        wat, peer = [], []
        try:
            for k in range(args.runs):
                programs = [(view, "Quit", ("q", "l"))]
                if nvitop:
                    programs.append(([str(nvitop)], "NVITOP", ("q",)))
                if k % 2:  # who starts first (and on a warmer cache) alternates
                    programs.reverse()
                got = dict(zip((p[1] for p in programs),
                               side_by_side(programs, env, size, args.warm, args.window),
                               strict=True))
                w = got["Quit"]
                wat.append(w)
                line = f"  run {k + 1}: wattui {w['cpu_pct']:.2f}%"
                if w["main_thread_cpu_pct"] is not None:
                    line += f" (UI thread {w['main_thread_cpu_pct']:.2f}%)"
                line += f" first frame {w['first_frame_s']:.3f} s"
                if nvitop:
                    n = got["NVITOP"]
                    peer.append(n)
                    line += (f", nvitop {n['cpu_pct']:.2f}% first frame {n['first_frame_s']:.3f} s"
                             f", ratio {w['cpu_pct'] / n['cpu_pct']:.2f}")
                print(line + f", load {w['load']:.2f}", flush=True)
            if args.profile:
                profile_view(env, store, [sid, *args.view_args], size, args.warm, args.profile,
                             args.top)
        finally:
            rec.send_signal(signal.SIGINT)
            try:
                rec.wait(60)
            except subprocess.TimeoutExpired:
                rec.kill()
    med = statistics.median
    out["terminal_wattui_cpu_pct_median"] = round(med(r["cpu_pct"] for r in wat), 2)
    out["terminal_wattui_cpu_pct_runs"] = [round(r["cpu_pct"], 2) for r in wat]
    ui = [r["main_thread_cpu_pct"] for r in wat if r["main_thread_cpu_pct"] is not None]
    if ui:
        out["terminal_wattui_ui_thread_cpu_pct_median"] = round(med(ui), 2)
    out["terminal_wattui_first_frame_s_median"] = round(med(r["first_frame_s"] for r in wat), 3)
    if peer:
        out["terminal_nvitop_cpu_pct_median"] = round(med(r["cpu_pct"] for r in peer), 2)
        out["terminal_nvitop_first_frame_s_median"] = round(
            med(r["first_frame_s"] for r in peer), 3
        )
        out["terminal_ratio_wattui_nvitop_median"] = round(
            med(w["cpu_pct"] / n["cpu_pct"] for w, n in zip(wat, peer, strict=True)), 2
        )
    out["terminal_load_avg_1m_median"] = round(med(r["load"] for r in wat), 2)
    return out


def profile_view(env: dict, store: Path, view_args: list[str], size, warm: float,
                 seconds: float, top: int) -> None:
    import io
    import pstats

    prof = store / "view.prof"
    argv = [sys.executable, "-c", PROFILED_VIEW, str(prof), str(warm), "view", *view_args]
    [r] = side_by_side([(argv, "Quit", ("q", "l"))], env, size, warm, seconds)
    print(f"profile: the viewer under cProfile {r['cpu_pct']:.2f}% of a core (the profiler's "
          f"own cost inflates it: read the shares); top {top} by own CPU time, UI thread and "
          "snapshot worker together")
    if not prof.exists():
        print("  (no profile written: the viewer did not exit cleanly)")
        return
    buf = io.StringIO()
    pstats.Stats(str(prof), stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    for line in text[text.find("   ncalls"):].splitlines():
        if line.strip():
            print("  " + line.replace(str(HERE.parent) + "/", "")[:150])
    buf = io.StringIO()
    pstats.Stats(str(prof), stream=buf).sort_stats("cumulative").print_stats(top)
    text = buf.getvalue()
    print(f"profile: top {top} by cumulative CPU time")
    for line in text[text.find("   ncalls"):].splitlines():
        if line.strip():
            print("  " + line.replace(str(HERE.parent) + "/", "")[:150])


def write_72h(store: Path, running: bool, hours: float = 72.0) -> Path:
    """A 72-hour simulated session, written straight to the store with Polars."""
    import numpy as np
    import polars as pl

    from wattui.sources.simulated import SimulatedGPU, SimulatedSource
    from wattui.store import schema
    from wattui.store.paths import sessions_dir, write_json_atomic
    from wattui.store.reader import conform_samples

    n = int(hours * 3600)
    t0 = 1_767_268_800.0
    sid = f"bench{hours:g}h-{'live' if running else 'done'}"
    d = sessions_dir(store) / sid
    d.mkdir(parents=True)
    g = SimulatedGPU(0)
    t = t0 + np.arange(n, dtype=np.float64)
    w = 2 * np.pi / g.period_s
    power = g.idle_w + g.swing_w * (1 - np.cos(w * t)) / 2
    energy = g.idle_w * (t - t0) + g.swing_w * ((t - t0) - (np.sin(w * t) - np.sin(w * t0)) / w) / 2
    load = (power - g.idle_w) / g.swing_w
    gpu = pl.DataFrame(
        {
            "t_wall": t,
            "t_mono": t - t0,
            "seq": np.arange(n, dtype=np.int64),
            "device": "gpu0",
            "energy_j": energy,
            "power_w": power,
            "util_pct": 100 * load,
            "mem_used_b": (20 + 10 * load) * 2**30,
            "temp_c": 35 + 40 * load,
            "energy_method": "simulated",
            "power_method": "simulated",
        }
    )
    proc = gpu.select("t_wall", "t_mono", "seq").with_columns(
        device=pl.lit("proc"),
        energy_j=pl.lit(None, pl.Float64),
        power_w=pl.lit(None, pl.Float64),
        util_pct=pl.lit(98.0),
        mem_used_b=pl.lit(3.5 * 2**30),
        temp_c=pl.lit(None, pl.Float64),
        energy_method=pl.lit("none"),
        power_method=pl.lit("none"),
    )
    samples = conform_samples(pl.concat([gpu, proc]).sort("seq", "device"), sid)
    epochs = 72
    ev = [
        {
            "t_wall": t0 + (k + 1) * n / epochs,
            "kind": "metric",
            "epoch": k + 1,
            "accuracy": 0.95 - 0.5 * np.exp(-(k + 1) / 10),
            "total_epochs": epochs,
        }
        for k in range(epochs)
    ]
    devices = [
        *(x.to_dict() for x in SimulatedSource(1).devices()),
        {
            "key": "proc",
            "kind": "proc",
            "index": 0,
            "name": "process tree",
            "energy_method": "none",
            "power_method": "none",
        },
    ]
    e_total = float(energy[-1])
    stats = {
        "gpu0": {
            "energy_j": e_total,
            "mean_w": e_total / (n - 1),
            "peak_w": float(power.max()),
            "last_w": float(power[-1]),
            "duration_s": float(n - 1),
        }
    }
    meta = {
        "schema_version": schema.SCHEMA_VERSION,
        "id": sid,
        "command": ["python", "train.py"],
        "mode": "launch",
        "host": "bench",
        "simulated": True,
        "period_s": 1.0,
        "devices": devices,
        "started_at": t0,
        "status": "running" if running else "finished",
        "recorder_pid": os.getpid(),
        "recorder_host": __import__("socket").gethostname(),
        "recorder_started": psutil.Process().create_time(),
    }
    (d / schema.OUTPUT).write_bytes(b"".join(b"step %d loss 0.1\n" % i for i in range(20000)))
    if running:
        samples.select(schema.SAMPLE_COLUMNS).write_csv(d / schema.SAMPLES_LIVE)
        (d / schema.EVENTS_LIVE).write_text("".join(json.dumps(e) + "\n" for e in ev))
        write_json_atomic(
            d / schema.LIVE, {"t_wall": t0 + n - 1, "devices": stats, "energy_j": e_total}
        )
    else:
        samples.write_parquet(d / schema.SAMPLES_FINAL, compression="zstd")
        from wattui.store.reader import events_frame

        events_frame(ev, sid).write_parquet(d / schema.EVENTS_FINAL)
        meta.update(ended_at=t0 + n - 1, exit_code=0, summary=stats, energy_j=e_total)
    write_json_atomic(d / schema.META, meta)
    return d


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("headless", "terminal", "memory"), action="append",
                    help="run only these parts (repeatable; default: all)")
    ap.add_argument("--gpus", type=int, default=8, help="terminal: GPUs on the stand-in NVML")
    ap.add_argument("--size", default="160x48", help="terminal: COLSxROWS of the pty")
    ap.add_argument("--runs", type=int, help="terminal: runs (default 3; --quick 1)")
    ap.add_argument("--warm", type=float, help="terminal: warm-up seconds (default 5; --quick 2)")
    ap.add_argument("--window", type=float, help="terminal: measured seconds (default 20; --quick 4)")
    ap.add_argument("--no-peer", action="store_true", help="terminal: do not run nvitop")
    ap.add_argument("--profile", type=float, default=0.0, metavar="S",
                    help="terminal: one more viewer run, profiled for S seconds")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--view-args", nargs="*", default=[], help="terminal: more arguments for `wattui view`")
    args = ap.parse_args()
    parts = set(args.only or ("headless", "terminal", "memory"))
    runs, window = (1, 5.0) if args.quick else (3, 20.0)
    args.runs = args.runs or runs
    args.warm = args.warm if args.warm is not None else (2.0 if args.quick else 5.0)
    args.window = args.window or (4.0 if args.quick else 20.0)
    results: dict = {}
    if "terminal" in parts:
        results.update(bench_terminal(args))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        if "headless" in parts:
            results.update(bench_headless(store, runs, window))
        if "memory" in parts:
            results.update(bench_memory(store, args.quick))
    results["load_avg_1m"] = round(os.getloadavg()[0], 2)
    results["cpus"] = os.cpu_count()
    for k, v in results.items():
        print(f"{k:45s} {v}")
    return 0


def bench_headless(store: Path, runs: int, window: float) -> dict:
    results: dict = {}
    cpu = bench_cpu(store, runs, window)
    pct = [100 * r["cpu"] / r["wall"] for r in cpu]
    rate = [r["applied"] / r["wall"] for r in cpu]
    results["cpu_pct_of_core_median"] = round(statistics.median(pct), 2)
    results["cpu_pct_runs"] = [round(x, 2) for x in pct]
    results["redraw_hz_median"] = round(statistics.median(rate), 2)

    # a finished session for `view`
    done = write_72h(store, running=False, hours=0.05)
    ff_view = [first_frame(["view", done.name], store) for _ in range(runs)]
    ff_launch = [first_frame(["--simulate", "--", "sleep", "30"], store) for _ in range(runs)]
    for d in (store / "sessions").iterdir():  # stop the recorders left running
        try:
            m = json.loads((d / "meta.json").read_text())
            if m.get("status") == "running" and m.get("recorder_pid") != os.getpid():
                stop_recorder(d)
        except (OSError, ValueError):
            pass
    results["first_frame_view_s_median"] = round(statistics.median(ff_view), 3)
    results["first_frame_launch_s_median"] = round(statistics.median(ff_launch), 3)
    return results


def bench_memory(store: Path, quick: bool) -> dict:
    results: dict = {}
    for running in (False, True):
        t = time.monotonic()
        d = write_72h(store, running=running, hours=1.0 if quick else 72.0)
        gen = time.monotonic() - t
        mem = [
            headless(store, d, warm=4.0 if not quick else 3.0, window=2.0)
            for _ in range(1 if quick else 3)
        ]
        key = "live_csv" if running else "finished_parquet"
        results[f"mem72h_{key}_peak_rss_mb_median"] = round(
            statistics.median(m["maxrss_mb"] for m in mem), 1
        )
        results[f"mem72h_{key}_rss_mb_median"] = round(
            statistics.median(m["rss_mb"] for m in mem), 1
        )
        results[f"mem72h_{key}_history_points"] = mem[0]["history_points"]
        results[f"mem72h_{key}_generate_s"] = round(gen, 2)
    return results


if __name__ == "__main__":
    sys.exit(main())
