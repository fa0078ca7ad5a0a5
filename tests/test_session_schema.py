"""Session files across schema versions: the version in meta.json, the session id column,
the documented versions, and the README's Polars snippet on a store that mixes the
sessions of the first release (version 1) with sessions recorded now."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import polars as pl
import pytest
from conftest import REPO
from nvml_stub.build import FakeNvml
from nvml_stub.fixtures import nvml_stub_lib  # noqa: F401

from wattui.store import schema
from wattui.store.reader import Session, list_sessions

# Two sessions as the first release recorded them (schema version 1, 11 sample columns),
# kept from the sample sessions of that release: the committed samples are re-recorded
# whenever the recorder improves, so they cannot stand for the old schema.
SAMPLES = REPO / "tests" / "fixtures" / "store_v1" / "sessions"
REPORT = (
    "import wattui\nfor e in range(2):\n    wattui.report(accuracy=0.5 + e / 10, epoch=e + 1)\n"
)


def python_block(text: str, after: str) -> str:
    """The first ```python block after the heading ``after``."""
    section = text[text.index(after) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory, nvml_stub_lib):  # noqa: F811
    """Two sessions of schema version 1 (11 sample columns) and three
    sessions recorded now by the real CLI (version 2): one and two simulated GPUs, and two
    GPUs of the stand-in NVML (whose samples have gpuN:run share rows too)."""
    store = tmp_path_factory.mktemp("mixed")
    shutil.copytree(SAMPLES, store / "sessions")
    fake = FakeNvml(nvml_stub_lib, store.parent / "fake-nvml.conf")
    fake.configure(count=2, **{"gpu0.power_w": 300, "gpu1.power_w": 120})
    keep = ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")
    nvml_env = {k: v for k, v in fake.subprocess_env().items() if k in keep}
    new = []
    for sim in (["--simulate", "1"], ["--simulate", "2"], []):
        env = dict(os.environ, WATTUI_HOME=str(store), **({} if sim else nvml_env))
        cmd = [sys.executable, "-m", "wattui", "record", *sim, "--period", "0.05", "--"]
        cmd += [sys.executable, "-c", REPORT + "import time; time.sleep(0.5)"]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        new.append(p.stderr.split("recording session ", 1)[1].split()[0])
    return store, new


@pytest.mark.slow
def test_new_sessions_carry_the_version_and_their_id_in_every_row(mixed_store):
    store, new = mixed_store
    for sid in new:
        d = store / "sessions" / sid
        assert (
            json.loads((d / "meta.json").read_text())["schema_version"]
            == schema.SCHEMA_VERSION
            == 2
        )
        for name in ("samples.parquet", "events.parquet"):
            df = pl.read_parquet(d / name)
            assert df.columns[0] == "session_id" and df.height > 0
            assert df["session_id"].unique().to_list() == [sid]
    # an old session read through wattui gets its id too
    old = Session.open(next(SAMPLES.iterdir()))
    assert old.meta["schema_version"] == 1
    for df in (old.samples(), old.events()):
        assert df.columns[0] == "session_id" and df["session_id"].unique().to_list() == [old.id]
    assert old.samples()["pids"].null_count() == old.samples().height  # a later column: nulls


def _run_snippet(code: str, store, name: str) -> dict:
    ns: dict = {}
    old = os.environ.get("WATTUI_HOME")
    os.environ["WATTUI_HOME"] = str(store)
    try:
        exec(compile(code, name, "exec"), ns)
    finally:
        if old is None:
            os.environ.pop("WATTUI_HOME")
        else:
            os.environ["WATTUI_HOME"] = old
    return ns


def _expected_gpu_energy(store) -> dict[tuple[str, str], float]:
    sessions, problems = list_sessions(store)
    assert not problems and len(sessions) == 5
    out = {}
    for s in sessions:
        df = s.samples().filter(pl.col("device").str.contains(r"^gpu\d+$"))
        for (dev,), part in df.group_by(["device"]):
            out[(s.id, dev)] = part["energy_j"][-1] - part["energy_j"][0]
    return out


@pytest.mark.slow
def test_readme_polars_snippet_on_a_mixed_store(mixed_store):
    store, new = mixed_store
    code = python_block((REPO / "README.md").read_text(), "## Session files")
    energy = _run_snippet(code, store, "README.md")["energy"]
    got = {(r["session_id"], r["device"]): r["energy_j"] for r in energy.to_dicts()}
    want = _expected_gpu_energy(store)
    assert got.keys() == want.keys()  # 2 old sessions x 1 GPU, new ones with 1, 2 and 2 GPUs
    assert len(got) == 2 + 1 + 2 + 2 and {new[1], new[2]} == {s for s, d in got if d == "gpu1"}
    nvml = pl.read_parquet(store / "sessions" / new[2] / "samples.parquet")
    assert "gpu0:run" in nvml["device"].to_list()  # the snippet leaves these shares out
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12)


@pytest.mark.slow
def test_session_format_polars_snippet_on_a_mixed_store(mixed_store):
    store, _ = mixed_store
    code = python_block(
        (REPO / "docs" / "session-format.md").read_text(), "## Loading every session"
    )
    ns = _run_snippet(code, store, "docs/session-format.md")
    got = {(r["session_id"], r["device"]): r["energy_j"] for r in ns["per_session"].to_dicts()}
    assert got == pytest.approx(_expected_gpu_energy(store))
    acc = ns["accuracy"]
    assert set(acc["session_id"]) >= set(mixed_store[1]) and len(set(acc["session_id"])) == 5
    assert len(ns["metas"]) == 5


@pytest.mark.slow
def test_the_plain_glob_scan_is_what_fails_on_mixed_stores(mixed_store):
    """Why the documented snippets stack one scan per file."""
    store, _ = mixed_store
    with pytest.raises(pl.exceptions.PolarsError):
        pl.scan_parquet(str(store / "sessions" / "*" / "samples.parquet")).collect()


def test_every_version_is_documented():
    text = (REPO / "docs" / "session-format.md").read_text()
    documented = {int(v) for v in re.findall(r"^### Version (\d+)$", text, re.M)}
    assert documented == set(range(1, schema.SCHEMA_VERSION + 1))
    assert f"# Session files (schema version {schema.SCHEMA_VERSION})" in text
