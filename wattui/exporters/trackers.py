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

from wattui.metrics.intake import event_from_row
from wattui.metrics.sam import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_UNIT, check_params, sam
from wattui.metrics.session_metrics import epoch_marks_from_rows
from wattui.model.values import finite_float
from wattui.sanitize import clean_text

TRACKERS = ("mlflow", "wandb", "tensorboard")
_INSTALL = {
    "mlflow": "pip install mlflow (or mlflow-skinny)",
    "wandb": "pip install wandb",
    "tensorboard": "pip install tensorboard",
}


class TrackerError(Exception):
    """One line: why the export cannot be done."""


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
            (finite_float(r.get("t_wall")), finite_float(r.get("energy_j"))) for r in rows if r.get("kind") == "metric"
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
        v = finite_float(p.get(k))
        if v is not None:
            out[k] = v
    key = clean_text(p.get("accuracy_key"), 200)  # a name from the run
    if key and key != "accuracy" and finite_float(p.get("accuracy")) is not None:
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
        v = finite_float(rec.get(src))
        if v is not None:
            out[dst] = v
    return out


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise TrackerError(f"--to {name.split('.')[0]} needs the library: {_INSTALL[name.split('.')[0]]}") from None


# ----------------------------------------------------------------------------- sinks
class Sink:
    """One tracker run: :meth:`open`, :meth:`log` per epoch point, :meth:`finish`.
    Used by ``wattui export`` (all points at once) and ``wattui record --log-to`` (live)."""

    def open(self, name: str, params: dict) -> str:  # returns the run's reference
        raise NotImplementedError

    def log(self, point: dict) -> None:
        raise NotImplementedError

    def finish(self, summary: dict[str, float]) -> None:
        raise NotImplementedError


class MlflowSink(Sink):
    """An MLflow run through ``MlflowClient`` (explicit run, no global active-run state)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None):
        mlflow = _import("mlflow")
        self.client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri or None)
        self.experiment = experiment or "wattui"
        self.run_id = ""

    def open(self, name: str, params: dict) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)
        tags = {"mlflow.runName": name, "wattui.session": str(params.get("wattui_session"))}
        tags["wattui.simulated"] = str(bool(params.get("simulated")))
        self.run_id = self.client.create_run(exp_id, tags=tags, run_name=name).info.run_id
        for k, v in params.items():
            self.client.log_param(self.run_id, k, str(v))
        return self.run_id

    def log(self, point: dict) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415 - optional extra

        ts = int(point["t_wall"] * 1000)
        ms = [Metric(k, v, ts, point["step"]) for k, v in _metrics_of(point).items()]
        if ms:
            self.client.log_batch(self.run_id, metrics=ms)

    def finish(self, summary: dict[str, float]) -> None:
        for k, v in summary.items():
            self.client.log_metric(self.run_id, k, v)
        self.client.set_terminated(self.run_id)


class WandbSink(Sink):
    """A W&B run (``mode="offline"`` writes it under ``directory`` only)."""

    def __init__(self, project: str | None = None, mode: str | None = None, directory: str | None = None):
        self.wandb = _import("wandb")
        self.project, self.mode, self.directory = project or "wattui", mode, directory
        self.run = None

    def open(self, name: str, params: dict) -> str:
        self.run = self.wandb.init(
            project=self.project, name=name, config=params, mode=self.mode, dir=self.directory,
            reinit="create_new",
        )
        return self.run.id

    def log(self, point: dict) -> None:
        m = _metrics_of(point)
        if m:
            self.run.log(m, step=point["step"])

    def finish(self, summary: dict[str, float]) -> None:
        for k, v in summary.items():
            self.run.summary[k] = v
        self.run.finish()


class TensorboardSink(Sink):
    """Scalars ``wattui/<name>`` in TensorBoard event files under ``logdir``."""

    def __init__(self, logdir: str | None = None):
        _import("tensorboard")
        self.logdir = str(logdir or "runs")
        self.w = None
        self.text = ""
        self.last_t = None

    def open(self, name: str, params: dict) -> str:
        from tensorboard.summary import Writer  # noqa: PLC0415 - optional extra

        self.w = Writer(self.logdir)
        self.text = ", ".join(f"{k}={v}" for k, v in params.items())
        return self.logdir

    def log(self, point: dict) -> None:
        for k, v in _metrics_of(point).items():
            self.w.add_scalar(f"wattui/{k}", v, step=point["step"], wall_time=point["t_wall"], description=self.text)
        self.w.flush()
        self.last_t = point["t_wall"]

    def finish(self, summary: dict[str, float]) -> None:
        for k, v in summary.items():
            self.w.add_scalar(f"wattui/summary/{k}", v, step=0, wall_time=self.last_t)
        self.w.close()


def make_sink(to: str, target: str | None = None, **opts) -> Sink:
    """``to`` is mlflow, wandb or tensorboard; ``target`` the tracking URI, W&B directory or
    TensorBoard log directory."""
    if to == "mlflow":
        return MlflowSink(opts.get("tracking_uri") or target, opts.get("project"))
    if to == "wandb":
        return WandbSink(opts.get("project"), opts.get("mode"), opts.get("directory") or target)
    if to == "tensorboard":
        return TensorboardSink(opts.get("logdir") or target)
    raise TrackerError(f"unknown tracker {to!r}: use one of {', '.join(TRACKERS)}")


def export_session(sink: Sink, rec: dict, points: list[dict]) -> str:
    """A finished session to a tracker, after the fact; returns the run's reference."""
    ref = sink.open(clean_text(rec.get("name") or rec.get("id"), 200), run_params(rec))
    for p in points:
        sink.log(p)
    sink.finish(summary_metrics(rec))
    return ref
