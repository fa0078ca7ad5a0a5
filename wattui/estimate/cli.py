"""``wattui estimate`` and ``wattui calibrate``: argv in, text out, exit code back.

Bad input gives one line on stderr and a non-zero exit (2: bad input, 3: calibration refused,
4: torch missing), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path

from wattui.argtypes import positive_int
from wattui.sanitize import clean_text

TORCH_HINT = ("wattui {cmd} needs PyTorch, which is not installed: "
              "pip install 'wattui[torch]'")


class InputError(Exception):
    """Bad user input: the message is the one line to print."""


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shape like 3,224,224: {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"not a shape like 3,224,224: {text!r}")
    return dims


def load_factory(spec: str):
    """``path/to/file.py:factory`` or ``package.module:factory`` -> the callable."""
    if ":" not in spec:
        raise InputError(f"MODEL must be 'file.py:factory' or 'package.module:factory', "
                         f"got {spec!r}")
    target, _, attr = spec.rpartition(":")
    if not attr or not target:
        raise InputError(f"MODEL must name a factory after ':', got {spec!r}")
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            if not path.is_file():
                raise InputError(f"model file not found: {target}")
            mod_spec = importlib.util.spec_from_file_location(f"_wattui_model_{path.stem}",
                                                              path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.path.insert(0, str(path.resolve().parent))
            try:
                mod_spec.loader.exec_module(module)
            finally:
                sys.path.pop(0)
        else:
            module = importlib.import_module(target)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: report, don't trace back
        raise InputError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"{target} has no callable '{attr}'")
    return factory


def build_model(factory):
    """Call the factory on the meta device (no memory); fall back to CPU if that fails."""
    import torch

    try:
        with torch.device("meta"):
            model = factory()
    except Exception:  # noqa: BLE001 - some factories can't build on meta; try for real
        try:
            model = factory()
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"model factory failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model factory returned {type(model).__name__}, not a "
                         "torch.nn.Module")
    return model


def estimate_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="wattui estimate",
        description="Estimate the energy of a model from its architecture (no real compute: "
                    "the model is traced on the meta device). Every figure is an estimate.")
    ap.add_argument("model", metavar="MODEL",
                    help="path/to/file.py:factory or package.module:factory returning an "
                         "nn.Module")
    ap.add_argument("--input-shape", required=True, type=_shape, metavar="C,H,W",
                    help="shape of one sample, without the batch dimension")
    ap.add_argument("--batch-size", required=True, type=positive_int, metavar="N")
    ap.add_argument("--predictors", metavar="NAME|PATH",
                    help="predictor set: a shipped name (getzner-xeon-cpu, "
                         "getzner-seed-method), a calibrated name, or a JSON path "
                         "(default: this device's calibrated set, else getzner-xeon-cpu)")
    ap.add_argument("--mode", choices=("inference", "training"), default="inference")
    ap.add_argument("--format", choices=("table", "json"), default="table")
    ap.add_argument("--samples", type=positive_int, metavar="N",
                    help="samples per epoch, for a per-epoch total")
    ap.add_argument("--input-dtype", choices=("float32", "int64"), default="float32",
                    help="int64 for token ids (models starting with nn.Embedding)")
    return ap


def run_estimate(args: list[str]) -> int:
    """Entry point of ``wattui estimate``."""
    ns = estimate_parser().parse_args(args)
    if not _have_torch():
        print(TORCH_HINT.format(cmd="estimate"), file=sys.stderr)
        return 4
    import torch

    from wattui.estimate.estimate import estimate_model
    from wattui.estimate.result import format_table

    try:
        model = build_model(load_factory(ns.model))
        dtype = torch.int64 if ns.input_dtype == "int64" else torch.float32
        try:
            res = estimate_model(model, ns.input_shape, ns.batch_size, ns.predictors,
                                 ns.mode, ns.samples, dtype)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the model's own forward failed
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InputError(f"tracing the model on input {(ns.batch_size, *ns.input_shape)} "
                             f"failed: {type(exc).__name__}: {first}") from None
    except InputError as exc:
        print(f"wattui estimate: {clean_text(exc)}", file=sys.stderr)
        return 2
    if ns.format == "json":
        print(json.dumps(res.to_dict(), indent=1))
    else:
        print(format_table(res))
    return 0


def calibrate_parser() -> argparse.ArgumentParser:
    from wattui.estimate.calibrate import LAYERS, OP_KINDS

    ap = argparse.ArgumentParser(
        prog="wattui calibrate",
        description="Measure layer energies on this machine and fit a predictor set for it.")
    ap.add_argument("--device", default=None, help="cuda:N or cpu (default: cuda:0 if "
                    "there is one, else cpu)")
    ap.add_argument("--layers", default=",".join(LAYERS),
                    help=f"comma-separated layer/op kinds (default: {','.join(LAYERS)}; "
                         f"also: {','.join(OP_KINDS)}, or 'all')")
    ap.add_argument("--configs", type=positive_int, default=20,
                    help="random configs per layer type (default 20)")
    ap.add_argument("--mode", choices=("inference", "training"), default="inference")
    ap.add_argument("--out", metavar="PATH", help="predictor JSON to write (default: "
                    "$WATTUI_HOME/predictors/<device>-<mode>.json or "
                    "~/.local/share/wattui/predictors/); the data set goes next to it "
                    "as .parquet")
    ap.add_argument("--simulate", action="store_true",
                    help="use a simulated device with known energy (checks the pipeline)")
    ap.add_argument("--window", type=float, default=2.0, metavar="S",
                    help="minimum seconds per measurement window (default 2)")
    ap.add_argument("--reps", type=positive_int, default=3, help="windows per config (default 3)")
    ap.add_argument("--idle", type=float, default=5.0, metavar="S",
                    help="idle baseline seconds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="shrink the sampled sizes (0-1] for a quicker real run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=("energy", "time"), default="energy",
                    help="energy: read a hardware energy counter (default); time: process "
                         "CPU time, single-threaded, for a CPU without an energy counter. A "
                         "time set is a time-proportional proxy in seconds, never energy")
    ap.add_argument("--ranges", choices=("seed", "models", "large"), default="seed",
                    help="config ranges of the seed kinds: the seed's random ranges, or "
                         "sizes typical of real networks (new op kinds use these by "
                         "default), or 'large': tensors past the last-level cache")
    ap.add_argument("--inputs", choices=("hot", "cold"), default="hot",
                    help="hot: every pass on the same input (default); cold: each pass on "
                         "an input not in cache, as inside a model (CPU)")
    return ap


def run_calibrate(args: list[str]) -> int:
    """Entry point of ``wattui calibrate``."""
    from wattui.estimate import calibrate as C
    from wattui.estimate.predictors import calibrated_path, device_slug

    ap = calibrate_parser()
    ns = ap.parse_args(args)
    layers = [s.strip().lower() for s in ns.layers.split(",") if s.strip()]
    if layers == ["all"]:
        layers = list(C.ALL_KINDS)
    bad = [s for s in layers if s not in C.ALL_KINDS]
    if bad or not layers:
        ap.error(f"unknown layer type(s) {', '.join(bad) or '(none)'}; "
                 f"choose from {', '.join(C.ALL_KINDS)}")
    if not 0 < ns.scale <= 1 or ns.window <= 0 or ns.idle < 0:
        ap.error("--scale must be in (0, 1], --window > 0, --idle >= 0")
    if not ns.simulate and not _have_torch():
        print(TORCH_HINT.format(cmd="calibrate"), file=sys.stderr)
        return 4
    device = ns.device
    if device is None:
        from wattui.estimate.devices import cuda_name

        device = "cuda:0" if (not ns.simulate and cuda_name(0)) else "cpu"
    if not (device == "cpu" or device.startswith("cuda")):
        print(f"wattui calibrate: unknown device '{device}' (use cpu or cuda:N)",
              file=sys.stderr)
        return 2

    def progress(kind, i, n):
        if not ns.simulate:
            print(f"  {kind}: {i}/{n}", file=sys.stderr, flush=True)

    try:
        cal = C.run_calibration(device, layers, ns.configs, ns.mode, ns.simulate, ns.window,
                                ns.reps, ns.idle, ns.seed, ns.scale, progress,
                                ns.method, ns.ranges, ns.inputs)
    except C.CalibrationRefused as exc:
        hint = "; on a CPU, --method time calibrates a time-proportional proxy" \
            if device == "cpu" and ns.method == "energy" and not ns.simulate else ""
        print(f"wattui calibrate: refused: {exc}{hint}", file=sys.stderr)
        return 3
    if not cal.fits:
        print("wattui calibrate: too few usable measurements to fit (need 5 per layer type)",
              file=sys.stderr)
        return 3
    suffix = "" if cal.method == "energy" else f"-{cal.method}"
    out = Path(ns.out) if ns.out else calibrated_path(
        ("simulated" if ns.simulate else cal.device) + suffix, ns.mode)
    parquet = C.write_parquet(cal.rows, out.with_suffix(".parquet"))
    name = out.stem if ns.out else device_slug(
        ("simulated" if ns.simulate else cal.device) + suffix)
    pset = cal.predictor_set(name, str(parquet))
    pset.save(out)
    kind = "SIMULATED device" if cal.simulated else cal.device
    print(f"calibrated {ns.mode} predictors for {kind}")
    if cal.method == "time":
        print(f"method: {C.TIME_PROXY}")
    else:
        print(f"idle power (recorded, not subtracted): {cal.idle_w:.3g} W")
    print(f"{'layer':<16} {'n':>4} {f'a [{cal.unit}]':>10} {'b':>10} {'c':>6} "
          f"{'CV median rel err':>18} {'CV mean rel err':>16}")
    for k, (a, b, c) in cal.fits.items():
        cv = cal.cv[k]
        n = sum(r["layer"] == k for r in cal.rows)
        form = "" if cv.get("form", "power") == "power" else \
            f"  ({cv['form']} form kept; the power law's CV median: " \
            f"{100 * cv['power_median_rel_err']:.1f}%)"
        print(f"{k:<16} {n:>4} {a:>10.3g} {b:>10.3g} {c:>6.3f} "
              f"{100 * cv['median_rel_err']:>17.1f}% {100 * cv['mean_rel_err']:>15.1f}%{form}")
    if cal.simulated:
        print("truth of the simulated device (a, b, c): " + ", ".join(
            f"{k}=({a:.3g}, {b:.3g}, {c:.3g})"
            for k, (a, b, c) in {**C.SIMULATED_TRUTH, **C.SIMULATED_TRUTH_OPS}.items()
            if k in cal.fits))
    print(f"data set: {parquet}")
    print(f"predictor set: {out}")
    return 0
