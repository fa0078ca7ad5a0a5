"""`wattui demo`: a first run with nothing to set up.

Launches a small, real PyTorch training run (``sample_runs/train.py``, or the copy inside the
package, :mod:`wattui.demo_train`) under a recorder and opens the live screen on it. On a
machine with an NVIDIA GPU it measures that GPU; without one it uses a simulated GPU, and says
so on stderr and (as every simulated session does) on screen.

    wattui demo                         live screen, model cnn, 15 epochs (about a minute)
    wattui demo --model wide-cnn        a bigger model: more energy, a little more accuracy
    wattui demo --headless              record without the screen, then check the session

This module keeps its heavy imports inside the command: it is imported to build the parser.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wattui import exitcodes
from wattui.argtypes import positive_int
from wattui.cli.common import CliError
from wattui.cli.watch import launch_and_watch

DEMO_MODELS = ("mlp", "cnn", "wide-cnn")  # the same as wattui.demo_train.MODELS (no torch here)
EXIT_CHECK_FAILED = exitcodes.CHECK_FAILED
# A demo run uses a few Wh: SAM in kWh is undefined (log10 < 0) and in Wh it sits near its
# singularity at 1 Wh, where 1/log10 rules the score. In joules it is defined and fair.
DEMO_SAM_UNIT = "J"


class DemoError(Exception):
    """One line for the user; ``exit_code`` from wattui.exitcodes."""

    def __init__(self, message: str, exit_code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_parser(sub, common) -> None:
    d = sub.add_parser(
        "demo",
        help="record a small training run (real PyTorch on the CPU) and watch it live",
        description="Launch a small image classifier training run on the CPU under a recorder "
        "and watch its power, energy and accuracy live. Without an NVIDIA GPU the GPU is "
        "simulated (and marked SIMULATED).",
    )
    common.store(d)
    common.simulate(
        d,
        "use N simulated GPUs (default 1) even if a real GPU is there; "
        "without a GPU this is the default",
    )
    d.add_argument("--model", choices=DEMO_MODELS, default="cnn", help="default: %(default)s")
    d.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        metavar="N",
        help="training epochs (default 15)",
    )
    d.add_argument("--seed", type=int, default=None, help="data and weight seed (default 0)")
    d.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="torch threads for the run (default 1)",
    )
    d.add_argument(
        "--train-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="training images (default 20000; smaller is faster)",
    )
    d.add_argument(
        "--headless",
        action="store_true",
        help="record without the live screen, print the summary and check the session",
    )
    d.add_argument("--name", help="session name (default: demo <model>)")


# -- the training command -------------------------------------------------------------
def train_script() -> Path | None:
    """``sample_runs/train.py`` of the clone wattui runs from (an editable install), or None."""
    import wattui

    path = Path(wattui.__file__).resolve().parent.parent / "sample_runs" / "train.py"
    return path if path.is_file() else None


def train_command(args) -> list[str]:
    script = train_script()
    cmd = [sys.executable, str(script)] if script else [sys.executable, "-m", "wattui.demo_train"]
    cmd += ["--model", args.model]
    for flag, value in (
        ("--epochs", args.epochs),
        ("--seed", args.seed),
        ("--threads", args.threads),
        ("--train-size", args.train_size),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def _have_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


# -- which GPU ------------------------------------------------------------------------
def choose_simulate(requested: int | None, rapl_root: str = "/sys/class/powercap"):
    """(simulate, reason): the number of simulated GPUs to use (None: the real ones) and
    a line saying why, for the user."""
    if requested:
        return requested, f"SIMULATED: using {requested} simulated GPU(s) as asked (--simulate)"
    from wattui.record.devices import build_sources
    from wattui.record.options import RecordOptions

    srcset = build_sources(RecordOptions(rapl_root=rapl_root))
    try:
        gpu_note = next((n for n in srcset.notes if n.startswith("no GPU energy")), None)
        has_gpu = any(d.kind == "gpu" for s in srcset.sources for d in s.devices())
    finally:
        for s in srcset.sources:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - probing only
                pass
    if has_gpu and gpu_note is None:
        return None, "measuring the real GPU(s) of this machine (NVML)"
    why = gpu_note.split(": ", 1)[-1] if gpu_note else "no NVIDIA GPU found"
    return 1, (
        f"SIMULATED: no real GPU to measure ({why}); the demo uses 1 simulated GPU, "
        "so its GPU power and energy are made up (marked SIMULATED)"
    )


# -- the command ----------------------------------------------------------------------
def run(args) -> int:
    try:
        return run_demo(args)
    except DemoError as e:
        raise CliError(str(e), e.exit_code) from None


def _say(msg: str) -> None:
    print(f"wattui demo: {msg}", file=sys.stderr, flush=True)


def run_demo(args) -> int:
    from wattui.record.options import MetricOptions, RecordOptions

    if not _have_torch():
        raise DemoError(
            "the demo trains a small PyTorch model and needs torch: "
            "pip install 'wattui[torch]' (on a CPU-only machine, a CPU build of torch)",
            exitcodes.MISSING_DEPENDENCY,
        )
    simulate, why = choose_simulate(args.simulate)
    _say(why)
    command = train_command(args)
    opts = RecordOptions(
        store=Path(args.store) if args.store else None,
        simulate=simulate,
        name=args.name or f"demo {args.model}",
        tags=["demo"],
        metrics=MetricOptions(sam_unit=DEMO_SAM_UNIT),
        extra_meta={"demo": {"model": args.model, "gpu": "simulated" if simulate else "nvml"}},
    )
    _say(
        f"SAM in {DEMO_SAM_UNIT} (--sam-unit {DEMO_SAM_UNIT}): a demo run uses a few Wh, where "
        "SAM in kWh is undefined and in Wh is dominated by log10 near 1 Wh"
    )
    headless = args.headless
    if not headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        _say("not a terminal: recording headless instead of opening the live screen")
        headless = True
    if not headless:
        _say(f"launching: {' '.join(command)}")
        code = int(launch_and_watch(command, opts) or 0)
        if simulate:  # the screen has gone: say it once more where it stays
            _say("the GPU in this session was SIMULATED (no real GPU was measured)")
        return code
    return run_headless(command, opts)


def run_headless(command: list[str], opts) -> int:
    """Record ``command`` without the screen, then check what reached the session."""
    from wattui.record.recorder import Recorder, RecordError

    _say(f"launching: {' '.join(command)}")
    rec = Recorder(opts)
    try:
        code = rec.launch(command)
    except RecordError as e:
        raise DemoError(str(e), e.exit_code) from None
    problems = check_session(rec.root, rec.session_id)
    if not problems:
        store = f" --store {opts.store}" if opts.store else ""
        _say(f"see it again: wattui show {rec.session_id}{store}")
    if code != 0:
        problems.insert(0, f"the training run exited with code {code}")
    if problems:
        for p in problems:
            _say(f"check failed: {p}")
        return code if code != 0 else EXIT_CHECK_FAILED
    return 0


def check_session(root: Path, session_id: str) -> list[str]:
    """What is wrong with a finished demo session (empty when accuracy, energy and a
    finished status all reached it). Prints one line with the figures when it is fine."""
    from wattui.sessions import session_record
    from wattui.store.reader import find_session

    try:
        rec = session_record(find_session(root, session_id))
    except LookupError as e:
        return [f"session {session_id} cannot be read: {e}"]
    problems = []
    if rec.get("status") != "finished":
        problems.append(f"session status is {rec.get('status')!r}, not 'finished'")
    if rec.get("energy_j") is None:
        problems.append("no energy was measured")
    if rec.get("accuracy") is None:
        problems.append("no accuracy reached the session (metrics intake)")
    elif rec.get("epochs_done") and rec.get("accuracy_reports") != rec.get("epochs_done"):
        problems.append(
            f"{rec.get('accuracy_reports')} accuracies stored for {rec['epochs_done']} epochs "
            "(each epoch's accuracy should be stored once)"
        )
    if not problems:
        sim = " [SIMULATED]" if rec.get("simulated") else ""
        sam = rec.get("sam")
        sam_s = ""
        if isinstance(sam, (int, float)):
            sam_s = (
                f", SAM {sam:.3f} (alpha={rec.get('sam_alpha'):g}, beta={rec.get('sam_beta'):g},"
                f" {rec.get('sam_unit')})"
            )
        _say(
            f"ok: session {rec['id']}{sim}: {rec['duration_s']:.1f} s, "
            f"{rec['energy_j'] / 3600:.3f} Wh, accuracy {rec['accuracy']:.4f}{sam_s}"
        )
    return problems
