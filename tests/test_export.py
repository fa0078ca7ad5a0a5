"""`wattui export`: a recorded session read back by CodeCarbon's own CSV data model and
writer, MLflow's file store, W&B's offline run file and TensorBoard's event files."""

from __future__ import annotations

import csv
import glob
import json
import math
import struct
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_wattui, show_json

CHILD = textwrap.dedent(
    """
    import time, wattui
    for ep in range(1, 5):
        time.sleep(0.35)
        wattui.report(epoch=ep, total_epochs=4, val_acc=0.5 + ep / 10, loss=1.0 / ep)
    time.sleep(0.2)
    """
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One real recorded session (2 simulated GPUs, 4 epochs reporting val_acc)."""
    store = tmp_path_factory.mktemp("export") / "store"
    store.mkdir()
    r = run_wattui(store, "record", "--simulate", "2", "--name", "exp-run", "--", sys.executable, "-c", CHILD)
    assert r.returncode == 0, r.stderr
    return store, show_json(store)


def _epoch_rows(store: Path) -> list[dict]:
    from wattui.store.reader import list_sessions

    (s,) = list_sessions(store)[0]
    return [r for r in s.events().to_dicts() if r["kind"] == "epoch_end"]


# ----------------------------------------------------------------------------- CodeCarbon
@pytest.mark.slow
def test_codecarbon_csv_has_codecarbons_columns_and_units(recorded, tmp_path):
    store, rec = recorded
    out = tmp_path / "emissions.csv"
    r = run_wattui(store, "export", "--to", "codecarbon", "-o", str(out), "--country", "FRA")
    assert r.returncode == 0, r.stderr
    assert "SIMULATED" in r.stderr
    with open(out, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["gpu_energy"]) == pytest.approx(rec["gpu_energy_j"] / 3.6e6, rel=1e-9)
    assert float(row["energy_consumed"]) == pytest.approx(rec["energy_j"] / 3.6e6, rel=1e-9)
    assert float(row["duration"]) == pytest.approx(rec["duration_s"], rel=1e-9)
    assert float(row["gpu_power"]) == pytest.approx(rec["gpu_energy_j"] / rec["duration_s"], rel=1e-9)
    from wattui.metrics.carbon import lookup_country

    fra = lookup_country("FRA")
    kg = rec["energy_j"] / 3.6e6 * fra.g_per_kwh / 1000.0
    assert float(row["emissions"]) == pytest.approx(kg, rel=1e-6)
    assert (row["country_iso_code"], row["country_name"]) == ("FRA", fra.country)
    assert row["run_id"] == rec["id"] and row["project_name"] == "exp-run"
    assert row["gpu_count"] == "2" and row["gpu_model"] == "2 x SIMULATED GPU"
    assert row["cpu_energy"] == "" and row["longitude"] == ""  # unknown: empty, not made up

    # A second export appends, as CodeCarbon does; a foreign CSV is refused in one line.
    r = run_wattui(store, "export", "--to", "codecarbon", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "emissions left empty" in r.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[1]["emissions"] == ""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    r = run_wattui(store, "export", "--to", "codecarbon", "-o", str(other))
    assert r.returncode == 2 and "not a CodeCarbon emissions.csv" in r.stderr
    assert "Traceback" not in r.stderr and other.read_text() == "a,b\n1,2\n"


@pytest.mark.slow
def test_codecarbons_own_data_model_and_writer_accept_the_file(recorded, tmp_path):
    pd = pytest.importorskip("pandas")
    emissions_data = pytest.importorskip("codecarbon.output_methods.emissions_data")
    file_mod = pytest.importorskip("codecarbon.output_methods.file")
    store, rec = recorded
    out = tmp_path / "emissions.csv"
    r = run_wattui(store, "export", "--to", "codecarbon", "-o", str(out), "--carbon-intensity", "400")
    assert r.returncode == 0, r.stderr
    # Every row builds CodeCarbon's EmissionsData: no missing and no extra column.
    (row,) = pd.read_csv(out).to_dict("records")
    data = emissions_data.EmissionsData(**row)
    assert data.gpu_energy == pytest.approx(rec["gpu_energy_j"] / 3.6e6)
    assert data.emissions == pytest.approx(rec["energy_j"] / 3.6e6 * 0.4)
    # CodeCarbon's own writer appends to it (it backs up and replaces files whose header differs).
    writer = file_mod.FileOutput(out.name, str(tmp_path))
    assert writer.has_valid_headers(data)
    writer.out(data, None)
    assert not list(tmp_path.glob("*.bak")) and len(pd.read_csv(out)) == 2


# ----------------------------------------------------------------------------- trackers
def _expected(store: Path, rec: dict) -> list[tuple[int, float]]:
    return [(int(r["epoch"]), r["energy_j"]) for r in _epoch_rows(store)]


@pytest.mark.slow
def test_mlflow_file_store_reads_back_per_epoch_energy_accuracy_and_sam(recorded, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    store, rec = recorded
    uri = (tmp_path / "mlruns").as_uri()
    args = ("export", "--to", "mlflow", "--tracking-uri", uri, "--sam-unit", "Wh", "--alpha", "2")
    # MLflow 3 refuses a file store unless told: its error reaches the user in one line.
    r = run_wattui(store, *args, MLFLOW_ALLOW_FILE_STORE="false")
    assert r.returncode == 2 and "mlflow refused" in r.stderr and "Traceback" not in r.stderr
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    r = run_wattui(store, *args)
    assert r.returncode == 0, r.stderr
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "wattui"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.params["sam_alpha"] == "2.0" and run.data.params["sam_unit"] == "Wh"
    assert run.data.params["energy_method"] == "simulated" and run.data.params["simulated"] == "True"
    energy = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "energy_j")]
    expected = _expected(store, rec)
    assert len(expected) == 4
    assert [s for s, _ in energy] == [s for s, _ in expected]
    assert [v for _, v in energy] == pytest.approx([v for _, v in expected], rel=1e-9)
    acc = client.get_metric_history(run.info.run_id, "val_acc")  # the metric's own name
    assert [(m.step, round(m.value, 6)) for m in acc] == [(1, 0.6), (2, 0.7), (3, 0.8), (4, 0.9)]
    from wattui.metrics.sam import sam

    sams = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "sam")}
    want = {k: sam(0.5 + k / 10, e, 2.0, 5.0, "Wh").value for k, e in expected}
    assert sams == pytest.approx({k: v for k, v in want.items() if v is not None}, rel=1e-9)
    power = [m.value for m in client.get_metric_history(run.info.run_id, "power_w")]
    ends = _epoch_rows(store)
    t = [rec["started_at"]] + [r["t_wall"] for r in ends]
    e = [0.0] + [r["energy_j"] for r in ends]
    assert power == pytest.approx([(e[i + 1] - e[i]) / (t[i + 1] - t[i]) for i in range(4)], rel=1e-9)
    summary = client.get_run(run.info.run_id).data.metrics
    assert summary["total_energy_j"] == pytest.approx(rec["energy_j"], rel=1e-9)


def _wandb_records(path: str):
    """Records of a W&B ``.wandb`` file (a LevelDB-style log after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        buf += data[pos : pos + length]
        pos += length
        if kind in (1, 4):  # FULL or LAST
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec
            buf = b""


@pytest.mark.slow
def test_wandb_offline_run_reads_back(recorded, tmp_path):
    pytest.importorskip("wandb")
    store, rec = recorded
    r = run_wattui(
        store, "export", "--to", "wandb", "--wandb-mode", "offline", "--wandb-dir", str(tmp_path), "--project", "p1",
        WANDB_SILENT="true",
    )
    assert r.returncode == 0, r.stderr
    (path,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    history, config = [], {}
    for x in _wandb_records(path):
        if x.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in x.history.item}
            history.append(items)
        elif x.WhichOneof("record_type") == "run":
            for u in x.run.config.update:
                config[u.key] = json.loads(u.value_json)
    assert config["sam_alpha"] == 5.0 and config["wattui_session"] == rec["id"]
    expected = _expected(store, rec)
    got = [(h["_step"], h["energy_j"]) for h in history if "energy_j" in h]
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-9)
    assert [round(h["val_acc"], 6) for h in history if "val_acc" in h] == [0.6, 0.7, 0.8, 0.9]


def _tb_series(ea, tag) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard tag, whether written as a scalar or a scalar tensor."""
    try:
        return [(e.step, float(e.value)) for e in ea.Scalars(tag)]
    except KeyError:
        import numpy as np
        from tensorboard.util import tensor_util

        return [(e.step, float(np.asarray(tensor_util.make_ndarray(e.tensor_proto)))) for e in ea.Tensors(tag)]


@pytest.mark.slow
def test_tensorboard_event_files_read_back(recorded, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store, rec = recorded
    logdir = tmp_path / "tb"
    r = run_wattui(store, "export", "--to", "tensorboard", "-o", str(logdir))
    assert r.returncode == 0, r.stderr
    ea = EventAccumulator(str(logdir))
    ea.Reload()
    tags = ea.Tags()["tensors"] + ea.Tags()["scalars"]
    assert {"wattui/energy_j", "wattui/power_w", "wattui/val_acc", "wattui/accuracy"} <= set(tags)

    def series(tag):
        return _tb_series(ea, tag)

    expected = _expected(store, rec)
    got = series("wattui/energy_j")
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)  # float32
    assert [round(v, 5) for _, v in series("wattui/val_acc")] == [0.6, 0.7, 0.8, 0.9]


@pytest.mark.slow
def test_missing_library_is_one_line(recorded, tmp_path):
    store, _ = recorded
    # A directory that shadows the library with a module that fails to import.
    shadow = tmp_path / "shadow"
    (shadow / "mlflow").mkdir(parents=True)
    (shadow / "mlflow" / "__init__.py").write_text("raise ImportError('no mlflow here')\n")
    import os

    r = run_wattui(store, "export", "--to", "mlflow", PYTHONPATH=f"{shadow}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert r.returncode == 4  # wattui.exitcodes.MISSING_DEPENDENCY
    assert "pip install mlflow" in r.stderr and "Traceback" not in r.stderr


def test_epoch_series_energy_power_accuracy_and_sam_per_epoch():
    from wattui.exporters.trackers import epoch_series
    from wattui.metrics.sam import sam

    def metric(t, epoch, acc):
        vals = {"epoch": epoch, "val_acc": acc, "loss": 1.0}
        return {"kind": "metric", "t_wall": t, "source": "report", "epoch": epoch, "accuracy": acc,
                "accuracy_key": "val_acc", "values_json": json.dumps(vals)}

    rows = [
        metric(110.0, 1, 0.61),
        {"kind": "epoch_end", "t_wall": 110.0, "epoch": 1, "energy_j": 36_000.0},
        metric(130.0, 2, 0.72),
        {"kind": "epoch_end", "t_wall": 130.0, "epoch": 2, "energy_j": 108_000.0},
        {"kind": "epoch_end", "t_wall": 140.0, "epoch": 3, "energy_j": 126_000.0},  # no accuracy
    ]
    pts = epoch_series(rows, 100.0, alpha=3, beta=2, unit="Wh")
    assert [p["step"] for p in pts] == [1, 2, 3]
    assert [p["epoch_energy_j"] for p in pts] == [36_000.0, 72_000.0, 18_000.0]
    assert [p["power_w"] for p in pts] == pytest.approx([3600.0, 3600.0, 1800.0])
    assert [p["accuracy"] for p in pts] == [0.61, 0.72, 0.72]  # epoch 3: the latest before it
    assert [p["accuracy_key"] for p in pts] == ["val_acc"] * 3
    assert pts[0]["sam"] == pytest.approx(sam(0.61, 36_000.0, 3, 2, "Wh").value)
    assert pts[0]["sam"] == pytest.approx(2 * 0.61**3 / 1.0)  # log10(10 Wh) = 1
    assert pts[2]["sam"] == pytest.approx(2 * 0.72**3 / math.log10(35.0))


# ----------------------------------------------------------------------------- live
@pytest.mark.slow
def test_record_log_to_tensorboard_and_mlflow_live(tmp_path, store, monkeypatch):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    r = run_wattui(
        store, "record", "--simulate", "2", "--log-to", f"tensorboard={logdir}", "--", sys.executable, "-c", CHILD
    )
    assert r.returncode == 0, r.stderr
    ea = EventAccumulator(str(logdir))
    ea.Reload()
    got = _tb_series(ea, "wattui/energy_j")
    rec = show_json(store)
    expected = _expected(store, rec)
    assert len(expected) == 4 and [s for s, _ in got] == [s for s, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert [round(v, 5) for _, v in _tb_series(ea, "wattui/val_acc")] == [0.6, 0.7, 0.8, 0.9]
    assert _tb_series(ea, "wattui/summary/total_energy_j")[0][1] == pytest.approx(rec["energy_j"], rel=1e-6)
    # the event file was opened while the run went on (after the fact it would be at or after
    # its end); no margin before the end: under load, importing the writer takes a second of
    # the run's 1.6 s (a 0.5 s margin failed once at load 8-14)
    assert rec["started_at"] - 5 < ea.FirstEventTimestamp() < rec["ended_at"]

    # A tracker that refuses: said once, the session is recorded as usual.
    store2 = tmp_path / "store2"
    store2.mkdir()
    uri = (tmp_path / "mlruns").as_uri()
    r = run_wattui(
        store2, "record", "--simulate", "--log-to", f"mlflow={uri}", "--", sys.executable, "-c", CHILD,
        MLFLOW_ALLOW_FILE_STORE="false",
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("--log-to mlflow: stopped logging") == 1 and "Traceback" not in r.stderr
    assert show_json(store2)["status"] == "finished"
    # ... and one that accepts.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    r = run_wattui(store2, "record", "--simulate", "--name", "live", "--log-to", f"mlflow={uri}", "--", sys.executable, "-c", CHILD)
    assert r.returncode == 0, r.stderr
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "wattui"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "live" and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "energy_j")] == [1, 2, 3, 4]
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 4


def test_record_log_to_bad_tracker_is_a_usage_error(store):
    r = run_wattui(store, "record", "--simulate", "--log-to", "neptune", "--", "true")
    assert r.returncode == 2 and "--log-to takes one of mlflow, wandb, tensorboard" in r.stderr


@pytest.mark.slow
def test_export_bad_input_is_one_line(recorded, tmp_path):
    store, _ = recorded
    for args, says in (
        (["nosuch", "--to", "codecarbon"], "no session matches"),
        (["--to", "codecarbon", "-o", str(tmp_path)], "is not a regular file"),
        (["--to", "excel"], "invalid choice"),
        (["--to", "codecarbon", "--country", "XX"], "unknown country code"),
    ):
        r = run_wattui(store, "export", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert says in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_record_log_to_wandb_offline_live(tmp_path, store):
    pytest.importorskip("wandb")
    r = run_wattui(
        store, "record", "--simulate", "--name", "wb-live", "--log-to", f"wandb={tmp_path}", "--",
        sys.executable, "-c", CHILD, WANDB_MODE="offline", WANDB_SILENT="true",
    )
    assert r.returncode == 0, r.stderr
    (path,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    history = []
    for x in _wandb_records(path):
        if x.WhichOneof("record_type") == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in x.history.item})
    rec = show_json(store)
    expected = _expected(store, rec)
    got = [(h["_step"], h["energy_j"]) for h in history if "energy_j" in h]
    assert [s for s, _ in got] == [s for s, _ in expected] == [1, 2, 3, 4]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-9)
    assert [round(h["val_acc"], 6) for h in history if "val_acc" in h] == [0.6, 0.7, 0.8, 0.9]
