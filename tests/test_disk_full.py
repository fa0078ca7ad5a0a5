"""A disk that fills: the files say what the recorder says, no temp files stay behind, and
a disk full at start leaves no empty session folder. A real full file system: a small
tmpfs mounted for the test (root only; skipped with the reason otherwise)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_wattui, wait_until, wattui_env

from wattui.format import fmt_energy_precise as format_energy


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(fs: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    return filler


def _no_temp_files(sdir: Path) -> list[str]:
    return [p.name for p in sdir.iterdir() if p.name.endswith(".tmp")]


def _start(store: Path, go: Path) -> subprocess.Popen:
    child = (
        "import os, time\n"
        "i = 0\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    print('step', i, flush=True); i += 1; time.sleep(0.05)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--no-passthrough",
         "--", sys.executable, "-c", child],
        env=wattui_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _session_dir(store: Path) -> Path:
    (sdir,) = (store / "sessions").iterdir()
    return sdir


@pytest.mark.slow
def test_full_at_start_is_one_line_and_leaves_no_session_folder(small_fs):
    store = small_fs / "store"
    store.mkdir()
    fill(small_fs)
    r = run_wattui(store, "record", "--simulate", "--", sys.executable, "-c", "pass")
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert err and "Traceback" not in r.stderr
    assert "cannot create the session" in err[-1] and "No space left" in err[-1]
    sessions = store / "sessions"
    assert not sessions.exists() or list(sessions.iterdir()) == []
    # --detach too: the folder it reserves for the recorder goes again
    r = run_wattui(store, "record", "--detach", "--simulate", "--", sys.executable, "-c", "pass")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not sessions.exists() or list(sessions.iterdir()) == []
    r = run_wattui(store, "sessions")
    assert r.returncode == 0 and "warning" not in r.stderr


@pytest.mark.slow
def test_full_to_the_end_the_recorder_says_what_the_files_say(small_fs, tmp_path):
    store = small_fs / "store"
    go = tmp_path / "go"
    p = _start(store, go)
    try:
        assert wait_until(lambda: (store / "sessions").exists()
                         and any((d / "live.json").exists() for d in (store / "sessions").iterdir()))
        sdir = _session_dir(store)
        fill(small_fs)
        time.sleep(1.5)  # a few flushes meet the full disk
        go.touch()
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    said = [ln for ln in err.splitlines() if "the disk refused the end of the session" in ln]
    assert len(said) == 1, err
    assert "will be listed as interrupted" in said[0]
    # no end-of-run summary (its "total" line) claiming what the files do not hold
    assert not any(ln.strip().startswith("total") for ln in err.splitlines()), err
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    assert rec["status"] == "interrupted"
    assert f"with {format_energy(rec['energy_j'])} " in said[0]
    assert _no_temp_files(sdir) == []


@pytest.mark.slow
def test_full_then_freed_before_the_end_loses_nothing(small_fs, tmp_path):
    store = small_fs / "store"
    go = tmp_path / "go"
    p = _start(store, go)
    try:
        assert wait_until(lambda: (store / "sessions").exists()
                         and any((d / "live.json").exists() for d in (store / "sessions").iterdir()))
        sdir = _session_dir(store)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
        reader.start()
        filler = fill(small_fs)
        # the run goes on against a full disk until the recorder meets it (appends may
        # fit in a file's last page for a while): the scenario
        wait_until(lambda: any("cannot write session" in ln for ln in lines),
                   what="the recorder to meet the full disk")
        filler.unlink()
        time.sleep(0.5)  # and on a freed one
        go.touch()
        p.wait(timeout=60)
        reader.join(timeout=10)
        err = "".join(lines)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    assert rec["status"] == "finished"
    assert f"total {format_energy(rec['energy_j']):>12}".split() == [
        w for ln in err.splitlines() if ln.strip().startswith("total") for w in ln.split()
    ]
    meta = json.loads((sdir / "meta.json").read_text())
    assert meta.get("write_errors", 0) >= 1 and not meta.get("dropped_rows")
    assert not meta.get("output_dropped_bytes")
    # every tick on disk, none torn or repeated; all output lines, in order
    import polars as pl

    seqs = pl.read_parquet(sdir / "samples.parquet").filter(pl.col("device") == "gpu0")["seq"]
    assert seqs.to_list() == list(range(seqs[0], seqs[0] + len(seqs)))
    steps = [int(ln.split()[1]) for ln in (sdir / "output.log").read_text().splitlines()]
    assert steps == list(range(len(steps))) and len(steps) > 20
    assert _no_temp_files(sdir) == []
