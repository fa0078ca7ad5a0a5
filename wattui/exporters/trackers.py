"""A session's per-epoch energy, power, accuracy and SAM in the experiment trackers users
already look at: MLflow, Weights & Biases and TensorBoard (each an optional extra).

One series (:func:`epoch_series`) feeds all three: per epoch, the session's cumulative
energy at the epoch's end (``energy_j``), the epoch's own energy (``epoch_energy_j``), its
mean power (``power_w``, epoch energy / epoch duration), the accuracy the run reported
(under its own name, e.g. ``val_accuracy``, and as ``accuracy``) and SAM with the alpha,
beta and unit it was computed with (logged as parameters / config / a text note). The
energy method (counter, integrated, simulated) goes with every run, so a tracker's chart
still says what it shows. Epochs come from the session's ``epoch_end`` events; a run that
reported accuracy without epochs gives one point per report (energy at the report).

Each writer takes the library module as an argument where a test or a live callback has
it already; otherwise it imports it and says how to install it when it is missing.
"""

from __future__ import annotations

import math

from wattui.metrics.intake import event_from_row
from wattui.metrics.sam import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_UNIT, check_params, sam
from wattui.metrics.session_metrics import epoch_marks_from_rows

TRACKERS = ("mlflow", "wandb", "tensorboard")
_INSTALL = {
    "mlflow": "pip install mlflow (or mlflow-skinny)",
    "wandb": "pip install wandb",
    "tensorboard": "pip install tensorboard",
}


class TrackerError(Exception):
    """One line: why the export cannot be done."""


def _num(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def epoch_series(
    rows: list[dict],
    started_at: float | None,
    *,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    unit: str = DEFAULT_UNIT,
    accuracy_key: str | None = None,
) -> list[dict]:
    """Per-epoch points from a session's event rows (see the module docstring).

    Each point: ``step`` (int), ``epoch``, ``t_wall``, ``energy_j``, ``epoch_energy_j``,
    ``power_w``, ``accuracy``, ``accuracy_key``, ``sam`` (None where undefined)."""
    alpha, beta, unit = check_params(alpha, beta, unit)
    evs = [event_from_row(r, accuracy_key) for r in rows if r.get("kind") == "metric"]
    accs = sorted((e for e in evs if e.accuracy is not None), key=lambda e: e.t_wall)
    marks = epoch_marks_from_rows(rows)
    points: list[dict] = []
    if marks:
        prev_t, prev_e = started_at, 0.0
        for k, t, e in marks:
            same = [a for a in accs if a.epoch is not None and a.epoch == k]
            before = same or [a for a in accs if a.t_wall <= t + 1e-6]
            acc = before[-1] if before else None
            ep_e = e - prev_e
            dt = None if prev_t is None else t - prev_t
            points.append(
                {
                    "step": int(k),
                    "epoch": k,
                    "t_wall": t,
                    "energy_j": e,
                    "epoch_energy_j": ep_e,
                    "power_w": ep_e / dt if dt and dt > 0 else None,
                    "accuracy": acc.accuracy if acc else None,
                    "accuracy_key": acc.accuracy_key if acc else None,
                }
            )
            prev_t, prev_e = t, e
    else:
        energy_at = [
            (_num(r.get("t_wall")), _num(r.get("energy_j"))) for r in rows if r.get("kind") == "metric"
        ]
        for i, a in enumerate(accs):
            e = next((en for t, en in energy_at if t == a.t_wall and en is not None), None)
            points.append(
                {
                    "step": int(a.epoch) if a.epoch is not None else i,
                    "epoch": a.epoch,
                    "t_wall": a.t_wall,
                    "energy_j": e,
                    "epoch_energy_j": None,
                    "power_w": None,
                    "accuracy": a.accuracy,
                    "accuracy_key": a.accuracy_key,
                }
            )
    for p in points:
        p["sam"] = sam(p["accuracy"], p["energy_j"], alpha, beta, unit).value
    return points


def _metrics_of(p: dict) -> dict[str, float]:
    out = {}
    for k in ("energy_j", "epoch_energy_j", "power_w", "accuracy", "sam"):
        v = _num(p.get(k))
        if v is not None:
            out[k] = v
    key = p.get("accuracy_key")
    if key and key != "accuracy" and _num(p.get("accuracy")) is not None:
        out[key] = float(p["accuracy"])  # the metric's own name, as the run reported it
    if "energy_j" in out:
        out["energy_kwh"] = out["energy_j"] / 3.6e6
    return out


def run_params(rec: dict) -> dict:
    """What every tracker run carries besides the series: SAM's parameters, the session,
    and how the energy was obtained."""
    methods = sorted({str(g.get("method")) for g in rec.get("gpus") or [] if g.get("method")})
    return {
        "wattui_session": rec.get("id"),
        "sam_alpha": rec.get("sam_alpha"),
        "sam_beta": rec.get("sam_beta"),
        "sam_unit": rec.get("sam_unit"),
        "energy_method": ",".join(methods) or "n/a",
        "simulated": bool(rec.get("simulated")),
        "gpu_count": len(rec.get("gpus") or []),
    }


def summary_metrics(rec: dict) -> dict[str, float]:
    out = {}
    for src, dst in (
        ("energy_j", "total_energy_j"),
        ("duration_s", "duration_s"),
        ("accuracy", "final_accuracy"),
        ("best_accuracy", "best_accuracy"),
        ("sam", "final_sam"),
        ("co2_g", "co2_g"),
    ):
        v = _num(rec.get(src))
        if v is not None:
            out[dst] = v
    return out


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise TrackerError(f"--to {name.split('.')[0]} needs the library: {_INSTALL[name.split('.')[0]]}") from None


# --------------------------------------------------------------------------- writers
def to_mlflow(rec: dict, points: list[dict], *, tracking_uri=None, experiment=None, mlflow=None) -> str:
    """One MLflow run per session; returns the run id."""
    mlflow = mlflow or _import("mlflow")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment or "wattui")
    with mlflow.start_run(run_name=rec.get("name") or rec.get("id")) as run:
        mlflow.log_params({k: str(v) for k, v in run_params(rec).items()})
        mlflow.set_tags({"wattui.session": str(rec.get("id")), "wattui.simulated": str(bool(rec.get("simulated")))})
        for p in points:
            m = _metrics_of(p)
            if m:
                mlflow.log_metrics(m, step=p["step"], timestamp=int(p["t_wall"] * 1000))
        s = summary_metrics(rec)
        if s:
            mlflow.log_metrics(s)
        return run.info.run_id


def to_wandb(rec: dict, points: list[dict], *, project=None, mode=None, directory=None, wandb=None) -> str:
    """One W&B run per session (``mode="offline"`` writes it locally); returns the run id."""
    wandb = wandb or _import("wandb")
    run = wandb.init(
        project=project or "wattui",
        name=rec.get("name") or rec.get("id"),
        config=run_params(rec),
        mode=mode,
        dir=directory,
        reinit="create_new",
    )
    try:
        for p in points:
            m = _metrics_of(p)
            if m:
                run.log(m, step=p["step"])
        for k, v in summary_metrics(rec).items():
            run.summary[k] = v
        return run.id
    finally:
        run.finish()


def to_tensorboard(rec: dict, points: list[dict], logdir: str) -> str:
    """Scalars under ``wattui/<name>`` in event files in ``logdir``; returns the directory."""
    _import("tensorboard")
    from tensorboard.summary import Writer  # noqa: PLC0415 - optional extra

    w = Writer(str(logdir))
    try:
        params = run_params(rec)
        text = ", ".join(f"{k}={v}" for k, v in params.items())
        for p in points:
            for k, v in _metrics_of(p).items():
                w.add_scalar(f"wattui/{k}", v, step=p["step"], wall_time=p["t_wall"], description=text)
        end = rec.get("ended_at")
        for k, v in summary_metrics(rec).items():
            w.add_scalar(f"wattui/summary/{k}", v, step=0, wall_time=end)
        w.flush()
    finally:
        w.close()
    return str(logdir)
