"""Training-framework callbacks against the real libraries: a tiny model built here on
synthetic tensors (no downloads) trains for real in a subprocess launched the way a
recorder launches a script ($WATTUI_CHANNEL_DIR set to a private directory), and the
events its callback reported are read back with the recorder's ReportChannel."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wattui.metrics.channel import ReportChannel, ensure_channel_dir

ROOT = Path(__file__).resolve().parent.parent


def _train(tmp_path, script: str, timeout: float = 120.0, **env_extra) -> list:
    """Run ``script`` as a watched training process; return the events it reported."""
    chan = ensure_channel_dir(tmp_path / "chan")
    assert (chan.stat().st_mode & 0o777) == 0o700
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        WATTUI_CHANNEL_DIR=str(chan),
        WATTUI_SESSION="itest",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="2",
        **env_extra,
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    lines = proc.stdout.strip().splitlines()
    pid = int(lines[-1])
    events = ReportChannel(lambda: [pid], chan, mark=False).poll()
    assert events, f"no events reported (took {time.monotonic() - t0:.1f} s)"
    assert all(e.source == "report" and e.pid == pid for e in events)
    return events, lines[:-1]


def _check_epochs(events, total: int, steps_per_epoch: int) -> None:
    epochs = [e for e in events if e.epoch is not None]
    assert [e.epoch for e in epochs] == sorted(e.epoch for e in epochs), events  # in order
    ends = {}  # the last event of each epoch: its end
    for e in epochs:
        ends[e.epoch] = e
    assert list(ends) == list(range(1, total + 1)), events
    assert all(e.total_epochs == total for e in ends.values())
    assert [e.step for e in ends.values()] == [steps_per_epoch * k for k in range(1, total + 1)]
    accs = [e.accuracy for e in events if e.accuracy is not None]
    assert accs and all(0.0 <= a <= 1.0 for a in accs)


# -- PyTorch Lightning -------------------------------------------------------------------
LIGHTNING = """
    import os, torch
    from torch.utils.data import DataLoader, TensorDataset
    {imports}

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)
        def training_step(self, batch, i):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.lin(x), y)
        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_acc", (self.lin(x).argmax(1) == y).float().mean())
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dl = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = pl.Trainer(
        max_epochs=2, callbacks=[Callback(every_n_steps=2)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, num_sanity_val_steps=2,
    )
    trainer.fit(Tiny(), dl, dl)
    print(os.getpid())
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "package, imports",
    [
        (
            "lightning",
            "import lightning.pytorch as pl\n"
            "from wattui.integrations.lightning import WattuiCallback as Callback",
        ),
        (
            "pytorch_lightning",
            "import pytorch_lightning as pl\n"
            "from wattui.integrations.lightning import PytorchLightningCallback as Callback",
        ),
    ],
    ids=["lightning", "pytorch_lightning"],
)
def test_lightning_callback(tmp_path, package, imports):
    pytest.importorskip(package, reason=f"{package} is not installed (pip install {package})")
    events, _ = _train(tmp_path, textwrap.dedent(LIGHTNING).format(imports=imports))
    _check_epochs(events, total=2, steps_per_epoch=4)
    # the step every 2 batches, and the validation accuracy after each epoch's validation;
    # nothing from the sanity check (it runs before any step)
    steps = [e.step for e in events if e.epoch is None and e.accuracy is None]
    assert steps == [2, 4, 6, 8]
    val = [e for e in events if e.accuracy is not None and "val_acc" in e.values
           and e.values.get("step") in (4, 8)]
    # each validation with its epoch (1-based, as at the epoch's end) and again at the end
    assert [(e.epoch, e.step) for e in val] == [(1, 4), (1, 4), (2, 8), (2, 8)]


def test_lightning_callback_class_is_a_real_callback():
    pl = pytest.importorskip("lightning.pytorch", reason="lightning is not installed")
    from wattui.integrations.lightning import WattuiCallback

    cb = WattuiCallback(monitor="val/acc", every_n_steps=5)
    assert isinstance(cb, pl.Callback) and cb.monitor == "val/acc"


# -- Hugging Face Transformers --------------------------------------------------------------
TRANSFORMERS = """
    import os, torch
    from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                              TrainingArguments)
    from wattui.integrations.transformers import WattuiCallback

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 50, (32, 8), generator=g)
    labels = (ids[:, 0] > 25).long()

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)
        def __getitem__(self, i):
            return {"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long),
                    "labels": labels[i]}

    def compute_metrics(p):
        preds = p.predictions.argmax(-1)
        return {"accuracy": float((preds == p.label_ids).mean())}

    args = TrainingArguments(
        output_dir="out", num_train_epochs=2, per_device_train_batch_size=8,
        per_device_eval_batch_size=16, eval_strategy="epoch", logging_steps=2,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=DS(), eval_dataset=DS(),
                      compute_metrics=compute_metrics, callbacks=[WattuiCallback()])
    trainer.train()
    print(os.getpid())
"""


@pytest.mark.slow
def test_transformers_callback(tmp_path):
    pytest.importorskip("transformers", reason="transformers is not installed")
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("transformers' Trainer needs accelerate (pip install accelerate)")
    events, _ = _train(tmp_path, TRANSFORMERS)
    _check_epochs(events, total=2, steps_per_epoch=4)
    evals = [e for e in events if e.accuracy is not None and e.values.get("loss") is None]
    assert len(evals) >= 2  # one per evaluation (eval_strategy="epoch")
    logged = [e.step for e in events if e.values.get("loss") is not None]
    assert logged[:4] == [2, 4, 6, 8]


# -- Keras 3 (torch backend: no TensorFlow needed) ----------------------------------------
KERAS = """
    import json, os
    import numpy as np
    import keras
    from wattui.integrations.keras import WattuiCallback

    assert keras.backend.backend() == "torch"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                     validation_data=(x, 1 - y), callbacks=[WattuiCallback(every_n_steps=2)])
    print(json.dumps(hist.history))
    print(os.getpid())
"""


@pytest.mark.slow
def test_keras_callback(tmp_path):
    if importlib.util.find_spec("keras") is None:  # importing it needs KERAS_BACKEND set
        pytest.skip("keras is not installed (pip install keras)")
    pytest.importorskip("torch", reason="the Keras test uses the torch backend")
    events, out = _train(tmp_path, KERAS, KERAS_BACKEND="torch")
    history = json.loads(out[-1])
    _check_epochs(events, total=3, steps_per_epoch=4)
    epochs = [e for e in events if e.epoch is not None]
    assert len(epochs) == 3
    # the validation accuracy (labels flipped: it differs from the training accuracy)
    assert [e.accuracy for e in epochs] == pytest.approx(history["val_accuracy"])
    assert history["val_accuracy"] != pytest.approx(history["accuracy"])
    assert all(e.values.get("loss") is not None for e in epochs)
    assert [e.step for e in events if e.epoch is None] == [2, 4, 6, 8, 10, 12]


def test_integration_modules_import_no_textual():
    import ast

    files = [*sorted((ROOT / "wattui" / "groups").glob("*.py")), ROOT / "wattui" / "exporters" / "prometheus.py"]
    files += sorted((ROOT / "wattui" / "integrations").glob("*.py"))
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for n in names:
                assert n.split(".")[0] != "textual" and not n.startswith("wattui.tui"), (f, n)
    code = (
        "import sys, wattui.integrations, wattui.groups.merge, wattui.groups.refs, wattui.exporters.prometheus\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual']\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_pick_accuracy_prefers_validation_and_handles_tensors():
    from wattui.integrations import pick_accuracy, to_float

    torch = pytest.importorskip("torch")
    m = {"train_acc": torch.tensor(0.9), "val_acc": torch.tensor(0.7), "loss": 1.0}
    assert pick_accuracy(m) == ("val_acc", pytest.approx(0.7))
    assert pick_accuracy(m, "train_acc")[1] == pytest.approx(0.9)
    assert pick_accuracy({"loss": 1.0}) == (None, None)
    assert to_float(torch.ones(3)) is None and to_float(float("nan")) is None


# -- names and ranks (issue 18) -------------------------------------------------------------
KERAS_RANKS = """
    import json, os
    import numpy as np
    import keras
    from wattui.integrations.keras import WattuiCallback
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rank0_only, per_node = WattuiCallback(), WattuiCallback(per_node=True)
    for epochs in (2, 1):  # two fit() calls: each counts its own steps
        model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, validation_data=(x, y),
                  callbacks=[rank0_only, per_node])
    print(os.getpid())
"""


@pytest.mark.slow
def test_keras_global_rank_per_node_own_name_and_steps_per_fit(tmp_path):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install keras)")
    pytest.importorskip("torch", reason="the Keras test uses the torch backend")
    # The first process of the second node: global rank 4, local rank 0.
    events, _ = _train(tmp_path, KERAS_RANKS, KERAS_BACKEND="torch", RANK="4", LOCAL_RANK="0")
    epochs = [e for e in events if e.epoch is not None]
    # only the per-node callback reported; the default one stays quiet off global rank 0
    assert [(e.epoch, e.step) for e in epochs] == [(1, 4), (2, 8), (1, 4)]
    assert all("val_accuracy" in e.values and e.accuracy_key == "val_accuracy" for e in epochs)
    assert all("accuracy" not in e.values or e.values["accuracy"] != e.values["val_accuracy"] for e in epochs)


@pytest.mark.slow
def test_transformers_reports_from_the_world_main_process_only(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    from wattui import _report
    from wattui.integrations.transformers import WattuiCallback

    chan = ensure_channel_dir(tmp_path / "chan")
    monkeypatch.setenv("WATTUI_CHANNEL_DIR", str(chan))
    _report._close()
    _report._st.reset()
    try:
        args = transformers.TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
        node1 = transformers.TrainerState(is_world_process_zero=False, is_local_process_zero=True)
        main = transformers.TrainerState(is_world_process_zero=True, is_local_process_zero=True)
        control = transformers.TrainerControl()
        metrics = {"eval_exact_match": 0.61, "eval_loss": 0.9}
        WattuiCallback(metric="eval_exact_match").on_evaluate(args, node1, control, metrics=metrics)
        WattuiCallback(metric="eval_exact_match", per_node=True).on_evaluate(args, node1, control, metrics=metrics)
        WattuiCallback().on_evaluate(args, main, control, metrics={"eval_accuracy": 0.7})
        events = ReportChannel(lambda: [os.getpid()], chan, mark=False).poll()
    finally:
        _report._close()
        _report._st.reset()
    assert [e.accuracy for e in events] == [0.61, 0.7]  # node 1 only when per_node
    # The metric keeps its own name; a name the intake would not take for an accuracy
    # also goes as `accuracy`.
    assert events[0].values["eval_exact_match"] == 0.61 and events[0].values["accuracy"] == 0.61
    assert events[1].values == {"eval_accuracy": 0.7, "step": 0, "total_epochs": 3}
    assert events[1].accuracy_key == "eval_accuracy"


def test_lightning_rank_rule():
    from types import SimpleNamespace

    pytest.importorskip("lightning.pytorch", reason="lightning is not installed")
    from wattui.integrations.lightning import WattuiCallback

    node1 = SimpleNamespace(global_rank=4, local_rank=0, sanity_checking=False)
    main = SimpleNamespace(global_rank=0, local_rank=0, sanity_checking=False)
    assert WattuiCallback()._reports(main) and not WattuiCallback()._reports(node1)
    assert WattuiCallback(per_node=True)._reports(node1)
    assert not WattuiCallback(per_node=True)._reports(SimpleNamespace(global_rank=5, local_rank=1))
