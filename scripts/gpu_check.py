#!/usr/bin/env python3
"""The real-GPU check: what wattui measures on this machine's NVIDIA GPU, in under 5 minutes.

    scripts/gpu-check [--gpu 0] [--device cuda:0] [--out docs/gpu-check] [--short]

Needs an NVIDIA driver, ``nvidia-ml-py`` and torch with CUDA. Steps:

1. NVML calls and units: every call wattui makes, its raw value, unit and cost per call;
   the counter's rate against the instantaneous power (are mJ and mW what they seem?).
2. Counter vs integrated instant power under a real torch matmul load, 30 s steady and
   30 s switched on and off every 0.25 s (a 0.5 s square load), read by wattui's own
   sampler at the period it uses without a counter (0.1 s, dithered). The counter is the
   figure wattui trusts where it exists; the difference is what a GPU without one loses.
   The run's estimated share of the GPU (``gpuN:run``) is reported as well.
3. The sampler's cost on a real training loop: median step time without and with
   ``wattui record``.
4. ``wattui calibrate --device cuda:0`` (reduced: 5 configs per layer type, 2 windows).

Writes one report, Markdown and JSON (``gpu-check-<gpu>-<date>.md/.json``), that
docs/measurement.md quotes. ``--short`` (seconds instead of minutes, ``calibrate
--simulate``, any torch device) only checks that the script works: the test suite runs it
against the stand-in NVML library. Its report says SHORT and measures nothing real.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FI_POWER_AVERAGE = 185
FI_POWER_INSTANT = 186

# A torch load in its own process (the sampler must not share its GIL): steady matmuls,
# then on/off halves of a square period. Prints its phase boundaries (CLOCK_MONOTONIC,
# shared by every process on Linux) as one JSON line at the end.
LOAD_CHILD = r"""
import json, sys, time, torch
dev, steady_s, square_s, period = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
cuda = dev.startswith("cuda")
n = 8192 if cuda else 256
a = torch.randn(n, n, device=dev); b = torch.randn(n, n, device=dev)
sync = torch.cuda.synchronize if cuda else (lambda: None)
(a @ b).sum().item(); sync()
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
while time.monotonic() - t0 < steady_s:
    c = a @ b; sync()
t1 = time.monotonic()
while time.monotonic() - t1 < square_s:
    x = (time.monotonic() - t1) % period
    if x < period / 2:
        c = a @ b; sync()
    else:
        time.sleep(period - x)
t2 = time.monotonic()
print(json.dumps({"steady": [t0, t1], "square": [t1, t2]}), flush=True)
"""

# A small training loop: step times (s) to the JSON file named by argv[2].
TRAIN_CHILD = r"""
import json, sys, time, torch
dev, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
cuda = dev.startswith("cuda")
torch.manual_seed(0)
w = 2048 if cuda else 128
model = torch.nn.Sequential(torch.nn.Linear(w, w), torch.nn.ReLU(), torch.nn.Linear(w, w),
                            torch.nn.ReLU(), torch.nn.Linear(w, 10)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
x = torch.randn(512, w, device=dev); y = torch.randint(0, 10, (512,), device=dev)
sync = torch.cuda.synchronize if cuda else (lambda: None)
times = []
start = time.monotonic()
while time.monotonic() - start < seconds or len(times) < 20:
    t = time.perf_counter()
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step()
    sync()
    times.append(time.perf_counter() - t)
json.dump(times, open(out, "w"))
"""


def log(msg: str) -> None:
    print(f"gpu-check: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ 1. NVML calls
def nvml_calls(index: int) -> dict:
    import pynvml as nv

    from wattui.sources.nvml_probe import nvml_probe

    nv.nvmlInit()
    try:
        h = nv.nvmlDeviceGetHandleByIndex(index)
        calls = [
            ("nvmlDeviceGetTotalEnergyConsumption", "mJ since driver load",
             lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h)),
            ("nvmlDeviceGetPowerUsage", "mW", lambda: nv.nvmlDeviceGetPowerUsage(h)),
            ("nvmlDeviceGetFieldValues(POWER_INSTANT)", "mW",
             lambda: _field(nv, h, FI_POWER_INSTANT)),
            ("nvmlDeviceGetFieldValues(POWER_AVERAGE)", "mW",
             lambda: _field(nv, h, FI_POWER_AVERAGE)),
            ("nvmlDeviceGetEnforcedPowerLimit", "mW", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h)),
            ("nvmlDeviceGetTemperature", "degC",
             lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            ("nvmlDeviceGetUtilizationRates", "% (gpu, memory)",
             lambda: (lambda u: [u.gpu, u.memory])(nv.nvmlDeviceGetUtilizationRates(h))),
            ("nvmlDeviceGetMemoryInfo", "bytes used",
             lambda: nv.nvmlDeviceGetMemoryInfo(h).used),
            ("nvmlDeviceGetComputeRunningProcesses", "pids",
             lambda: [p.pid for p in nv.nvmlDeviceGetComputeRunningProcesses(h)]),
            ("nvmlDeviceGetProcessUtilization", "(pid, SM %)",
             lambda: [(s.pid, s.smUtil) for s in nv.nvmlDeviceGetProcessUtilization(h, 0)]),
            ("nvmlDeviceGetArchitecture", "NVML_DEVICE_ARCH_*",
             lambda: nv.nvmlDeviceGetArchitecture(h)),
            ("nvmlDeviceGetMigMode", "(current, pending)", lambda: nv.nvmlDeviceGetMigMode(h)),
            # The driver's own power samples: if it keeps them often enough, a GPU without a
            # counter could integrate these instead of wattui's reads (not used yet).
            ("nvmlDeviceGetSamples(TOTAL_POWER)", "(samples kept, median ms between them)",
             lambda: _power_samples(nv, h)),
        ]
        out = []
        for name, unit, fn in calls:
            row = {"call": name, "unit": unit}
            try:
                row["value"] = _jsonable(fn())
                costs = []
                for _ in range(20):
                    t = time.perf_counter()
                    fn()
                    costs.append(time.perf_counter() - t)
                row["cost_us_median"] = round(1e6 * statistics.median(costs), 1)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                row["error"] = type(e).__name__
            out.append(row)
        units = _unit_check(nv, h)
        name = nv.nvmlDeviceGetName(h)
        driver = nv.nvmlSystemGetDriverVersion()
    finally:
        nv.nvmlShutdown()
    probe = [p for p in nvml_probe() if p.get("index") == index]
    return {
        "gpu_name": name.decode() if isinstance(name, bytes) else str(name),
        "driver": driver.decode() if isinstance(driver, bytes) else str(driver),
        "calls": out,
        "units": units,
        "wattui_probe": probe[0] if probe else None,
    }


def _field(nv, h, fid: int) -> float:
    (v,) = nv.nvmlDeviceGetFieldValues(h, [fid])
    if v.nvmlReturn != 0:
        raise nv.NVMLError(v.nvmlReturn)
    return float(v.value.uiVal)


def _power_samples(nv, h) -> list:
    _kind, samples = nv.nvmlDeviceGetSamples(h, nv.NVML_TOTAL_POWER_SAMPLES, 0)
    ts = sorted(int(x.timeStamp) for x in samples)
    gaps = [(b - a) / 1000.0 for a, b in zip(ts, ts[1:])]
    return [len(ts), round(statistics.median(gaps), 2) if gaps else None]


def _jsonable(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (int, float, str)) or v is None:
        return v
    return str(v)


def _unit_check(nv, h, seconds: float = 2.0) -> dict:
    """The counter's rate (mJ/s) against the mean instantaneous power (mW) over a few s."""
    try:
        e0, t0 = nv.nvmlDeviceGetTotalEnergyConsumption(h), time.monotonic()
    except Exception as e:  # noqa: BLE001
        return {"counter": f"n/a ({type(e).__name__})"}
    powers = []
    while time.monotonic() - t0 < seconds:
        try:
            powers.append(_field(nv, h, FI_POWER_INSTANT))
        except Exception:  # noqa: BLE001
            powers.append(float(nv.nvmlDeviceGetPowerUsage(h)))
        time.sleep(0.05)
    e1, t1 = nv.nvmlDeviceGetTotalEnergyConsumption(h), time.monotonic()
    rate_w = (e1 - e0) / 1000.0 / (t1 - t0)
    mean_w = statistics.fmean(powers) / 1000.0
    ratio = rate_w / mean_w if mean_w else None
    return {
        "counter_rate_w": round(rate_w, 2),
        "mean_power_w": round(mean_w, 2),
        "ratio": None if ratio is None else round(ratio, 3),
        "consistent": ratio is not None and 0.5 < ratio < 2.0,
    }


# ---------------------------------------------- 2. counter vs integrated, real load
def counter_vs_integrated(index: int, device: str, steady_s: float, square_s: float) -> dict:
    from wattui.sampler import FAST_PERIOD_S, Sampler
    from wattui.sources.base import PowerIntegrator
    from wattui.sources.nvml import NvmlSource

    child = subprocess.Popen(
        [sys.executable, "-c", LOAD_CHILD, device, str(steady_s), str(square_s), "0.5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the torch load did not start")
        src = NvmlSource(indices=[index])
        src.follow_run(lambda: {child.pid})
        key = f"gpu{index}"
        rows: list[tuple[float, float | None, float | None, float | None]] = []

        def keep(s) -> None:
            r = s.by_key()
            share = r.get(f"{key}:run")
            rows.append((s.t_mono, r[key].energy_j, r[key].power_w,
                         None if share is None else share.energy_j))

        sampler = Sampler([src], FAST_PERIOD_S)
        sampler.subscribe(keep)
        sampler.sample_once()
        sampler.start()
        try:
            child.stdin.write("go\n")
            child.stdin.flush()
            line = child.stdout.readline()
        finally:
            sampler.stop()
            info = src.devices()[0]
            src.close()
        if not line.strip():
            raise RuntimeError(f"the torch load ended early (exit {child.wait()})")
        phases = json.loads(line)
    finally:
        child.kill()
        child.wait()
    out = {"energy_method": info.energy_method, "power_method": info.power_method,
           "period_s": FAST_PERIOD_S, "phases": {}}
    for name, (a, b) in phases.items():
        part = [r for r in rows if a <= r[0] <= b and r[2] is not None]
        if len(part) < 2:
            out["phases"][name] = {"error": "fewer than 2 reads"}
            continue
        integ = PowerIntegrator()
        for t, _e, p, _s in part:
            integ.update(t, p)
        counter = None
        if part[0][1] is not None and part[-1][1] is not None:
            counter = part[-1][1] - part[0][1]
        share = None
        if part[0][3] is not None and part[-1][3] is not None:
            share = part[-1][3] - part[0][3]
        secs = part[-1][0] - part[0][0]
        out["phases"][name] = {
            "seconds": round(secs, 2),
            "reads": len(part),
            "counter_j": None if counter is None else round(counter, 2),
            "integrated_instant_j": round(integ.total, 2),
            "difference_pct": None if not counter else round(100 * (integ.total - counter) / counter, 3),
            "mean_w": round(integ.total / secs, 1) if secs else None,
            "run_share_estimated_j": None if share is None else round(share, 2),
        }
    out["trusted"] = (
        "counter (the driver's accumulator; integration only sees the reads)"
        if info.energy_method == "counter" else "integrated (this GPU has no counter)"
    )
    return out


# ------------------------------------------------------- 3. sampler cost, training
def _run_recorder(cmd: list[str], env: dict, timeout: float,
                  warm_s: float) -> tuple[subprocess.CompletedProcess, float | None]:
    """Run ``wattui record``; also its own steady CPU (% of one core) from ``warm_s`` in to
    its last read (start-up imports left out; the training run is a child)."""
    from wattui.sources.process import process_cpu_s

    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    first = last = None
    while p.poll() is None and time.monotonic() - t0 < timeout:
        now, cpu = time.monotonic(), process_cpu_s(p.pid)
        if cpu is not None and now - t0 >= warm_s:
            first = first or (now, cpu)
            last = (now, cpu)
        time.sleep(0.25)
    out, err = p.communicate(timeout=60)
    pct = None
    if first and last and last[0] - first[0] > 0.5:
        pct = round(100 * (last[1] - first[1]) / (last[0] - first[0]), 3)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), pct


def training_cost(device: str, seconds: float, store: Path, rounds: int) -> dict:
    """Step times of a training loop alone and under `wattui record`; the recorder's own CPU
    with its light ticks in the native thread and (``WATTUI_NATIVE_TICKS=0``) in Python."""
    results: dict[str, list[float]] = {"plain": [], "recorded": [], "recorded_python_ticks": []}
    recorder_cpu: dict[str, list[float]] = {"native": [], "python": []}
    energy = {}
    for rnd in range(rounds):
        for mode in results:
            out = store / f"steps-{mode}-{rnd}.json"
            cmd = [sys.executable, "-c", TRAIN_CHILD, device, str(out), str(seconds)]
            if mode == "plain":
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
            else:
                cmd = [sys.executable, "-m", "wattui", "record", "--store", str(store),
                       "--name", f"gpu-check-{mode}-{rnd}", "--", *cmd]
                native = "1" if mode == "recorded" else "0"
                env = dict(os.environ, WATTUI_NATIVE_TICKS=native)
                r, pct = _run_recorder(cmd, env, seconds * 4 + 120, warm_s=2 + seconds / 4)
                if pct is not None:
                    recorder_cpu["native" if native == "1" else "python"].append(pct)
            if r.returncode != 0:
                raise RuntimeError(f"{mode} training run failed: {r.stderr.strip()[-400:]}")
            times = json.loads(out.read_text())[10:]  # warm-up steps out
            results[mode].append(statistics.median(times))
    show = subprocess.run([sys.executable, "-m", "wattui", "show", "--store", str(store),
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    if show.returncode == 0:
        rec = json.loads(show.stdout)
        energy = {"session_energy_j": rec.get("energy_j"),
                  "gpus": [{k: g.get(k) for k in ("key", "energy_j", "method", "power_method",
                                                   "run_energy_j")} for g in rec.get("gpus", [])]}
    plain = min(results["plain"])
    rec_ = min(results["recorded"])
    return {
        "seconds_per_run": seconds,
        "runs": rounds,
        "median_step_s_plain": [round(x, 6) for x in results["plain"]],
        "median_step_s_recorded": [round(x, 6) for x in results["recorded"]],
        "overhead_pct": round(100 * (rec_ - plain) / plain, 2),
        "median_step_s_recorded_python_ticks": [round(x, 6) for x in results["recorded_python_ticks"]],
        "recorder_cpu_pct": recorder_cpu,  # of one core, steady; per run
        "last_recorded_session": energy,
    }


# ------------------------------------------------------------------ 4. calibrate
def calibrate(device: str, short: bool, out: Path) -> dict:
    cmd = [sys.executable, "-m", "wattui", "calibrate", "--out", str(out / "calibrated.json")]
    if short:
        cmd += ["--simulate", "--configs", "5", "--reps", "1", "--window", "0.2", "--idle", "0.2"]
    else:
        cmd += ["--device", device, "--configs", "5", "--reps", "2", "--window", "1",
                "--idle", "3", "--scale", "0.5"]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    return {
        "command": " ".join(["wattui", *cmd[3:]]),
        "exit_code": r.returncode,
        "seconds": round(time.monotonic() - t, 1),
        "output": r.stdout.strip().splitlines()[-12:],
        "stderr_tail": r.stderr.strip().splitlines()[-3:] if r.returncode else [],
    }


# ----------------------------------------------------------------------- report
def markdown(rep: dict) -> str:
    L = [f"# wattui GPU check: {rep['gpu']['gpu_name']}", ""]
    if rep["short"]:
        L += ["**SHORT run: checks that the script works; nothing here is a real measurement.**", ""]
    L += [f"- date: {rep['date']}, host: {rep['host']}, driver {rep['gpu']['driver']}, "
          f"torch {rep['torch']}, wattui {rep['wattui_commit']}",
          f"- total time: {rep['seconds']:.0f} s", "", "## 1. NVML calls and units", "",
          "| call | value | unit | cost per call |", "|---|---|---|---|"]
    for c in rep["gpu"]["calls"]:
        val = c.get("value", f"error: {c.get('error')}")
        cost = f"{c['cost_us_median']} us" if "cost_us_median" in c else "-"
        L.append(f"| `{c['call']}` | {str(val)[:60]} | {c['unit']} | {cost} |")
    u = rep["gpu"]["units"]
    L += ["", f"Counter rate vs mean instantaneous power over 2 s: {json.dumps(u)}", "",
          "## 2. Counter vs integrated instant power (torch matmul)", ""]
    ci = rep["counter_vs_integrated"]
    if "error" in ci:
        L.append(f"failed: {ci['error']}")
    else:
        L += [f"wattui's labels: energy `{ci['energy_method']}`, power `{ci['power_method']}`; "
              f"reads every {ci['period_s']} s, dithered. Trusted: {ci['trusted']}.", "",
              "| load | s | reads | counter J | integrated J | difference | mean W | run's share J (est.) |",
              "|---|---|---|---|---|---|---|---|"]
        for name, p in ci["phases"].items():
            if "error" in p:
                L.append(f"| {name} | {p['error']} |")
                continue
            diff = "n/a" if p["difference_pct"] is None else f"{p['difference_pct']:+.2f} %"
            L.append(f"| {name} | {p['seconds']} | {p['reads']} | {p['counter_j']} | "
                     f"{p['integrated_instant_j']} | {diff} | {p['mean_w']} | "
                     f"{p['run_share_estimated_j']} |")
    tc = rep["training_cost"]
    L += ["", "## 3. Sampler cost on a training loop", ""]
    if "error" in tc:
        L.append(f"failed: {tc['error']}")
    else:
        L += [f"Median step time, {tc['runs']} runs of {tc['seconds_per_run']} s each: plain "
              f"{tc['median_step_s_plain']} s, under `wattui record` {tc['median_step_s_recorded']} s: "
              f"overhead {tc['overhead_pct']:+.2f} % (best of each).",
              f"The recorder's own CPU, % of one core in its steady part (per run): light ticks in "
              f"the native thread {tc['recorder_cpu_pct']['native']}, in Python "
              f"(`WATTUI_NATIVE_TICKS=0`) {tc['recorder_cpu_pct']['python']}; step times with "
              f"Python ticks {tc['median_step_s_recorded_python_ticks']} s.",
              f"Recorded session: {json.dumps(tc['last_recorded_session'])}"]
    cal = rep["calibrate"]
    if "error" in cal:
        cal = {"command": "wattui calibrate", "exit_code": "-", "seconds": "-",
               "output": [f"failed: {cal['error']}"]}
    L += ["", "## 4. `wattui calibrate`", "", f"`{cal['command']}`: exit {cal['exit_code']} in "
          f"{cal['seconds']} s", "", "```", *cal.get("output", []), *cal.get("stderr_tail", []), "```", ""]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Measure what wattui measures on this GPU.")
    ap.add_argument("--gpu", type=int, default=0, help="NVML index of the GPU (default 0)")
    ap.add_argument("--device", default="cuda:0", help="torch device on that GPU (default cuda:0)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "gpu-check"), help="report folder")
    ap.add_argument("--short", action="store_true", help="seconds, not minutes: a test of the script")
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        import torch
    except ImportError:
        print("gpu-check: torch is not installed: pip install torch", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu-check: torch sees no CUDA device for {args.device} (a CPU build of torch?): "
              "install torch with CUDA, or pass --device cpu with --short", file=sys.stderr)
        return 2
    steady, square, train = (3.0, 3.0, 3.0) if args.short else (30.0, 30.0, 10.0)
    rep: dict = {"short": args.short, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "host": platform.node(), "python": platform.python_version(),
                 "torch": torch.__version__, "wattui_commit": _commit(), "device": args.device}
    log("1/4 NVML calls and units")
    try:
        rep["gpu"] = nvml_calls(args.gpu)
    except Exception as e:  # noqa: BLE001 - without NVML there is nothing to check
        print(f"gpu-check: NVML failed on GPU {args.gpu}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wattui-gpu-check-") as tmp:
        for step, key, fn in (
            ("2/4 counter vs integrated under a torch load", "counter_vs_integrated",
             lambda: counter_vs_integrated(args.gpu, args.device, steady, square)),
            ("3/4 sampler cost on a training loop", "training_cost",
             lambda: training_cost(args.device, train, Path(tmp), 1 if args.short else 2)),
            ("4/4 wattui calibrate", "calibrate", lambda: calibrate(args.device, args.short, Path(tmp))),
        ):
            log(step)
            try:
                rep[key] = fn()
            except Exception as e:  # noqa: BLE001 - report it and go on
                rep[key] = {"error": f"{type(e).__name__}: {e}"}
    rep["seconds"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", rep["gpu"]["gpu_name"].lower()).strip("-")
    stem = f"gpu-check-{slug}-{rep['date'][:10]}" + ("-short" if args.short else "")
    (out / f"{stem}.json").write_text(json.dumps(rep, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(rep))
    log(f"done in {rep['seconds']:.0f} s: {out / stem}.md and .json")
    failed = [k for k in ("counter_vs_integrated", "training_cost", "calibrate")
              if "error" in rep[k] or rep[k].get("exit_code", 0)]
    if failed:
        log(f"steps that failed: {', '.join(failed)} (see the report)")
    return 1 if failed else 0


def _commit() -> str:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
