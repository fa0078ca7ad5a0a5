"""Session ids that do not collide, and a --session-id that cannot leave the store."""

from __future__ import annotations

import json
import re
import sys
import threading

import pytest
from conftest import run_wattui

from wattui.record import recorder as recorder_mod
from wattui.record.options import RecordOptions
from wattui.record.recorder import Recorder, RecordError
from wattui.store.paths import check_session_id, new_session_id


def test_ids_carry_32_random_bits_after_the_time():
    ids = {new_session_id(now=1_800_000_000.0) for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", i) for i in ids)


def test_a_taken_id_is_replaced_by_a_fresh_one(tmp_path, monkeypatch):
    """64 recorders start in the same second and their first id is the same: every one
    gets a session (the writer's mkdir is the arbiter, EEXIST means try another)."""
    store = tmp_path / "store"
    taken = "20260101-000000-00000000"
    real = new_session_id
    first = threading.local()

    def colliding(now=None):
        if not getattr(first, "done", False):
            first.done = True
            return taken
        return real(now)

    monkeypatch.setattr(recorder_mod, "new_session_id", colliding)
    made: list[str] = []
    errors: list[Exception] = []

    def start() -> None:
        try:
            rec = Recorder(RecordOptions(store=store, simulate=1))
            w = rec._create_writer({"command": ["x"]})
            made.append(w.session_id)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(made) == 64 and len(set(made)) == 64 and taken in made
    assert sorted(p.name for p in (store / "sessions").iterdir()) == sorted(made)


@pytest.mark.parametrize(
    "bad", ["../../x", "a/b", "..", ".hidden", "-rf", "", "x" * 129, "a\nb", "a b", "é"]
)
def test_session_id_is_validated(bad):
    with pytest.raises(ValueError):
        check_session_id(bad)
    with pytest.raises(RecordError):
        Recorder(RecordOptions(session_id=bad))


def test_session_id_escape_is_a_one_line_error_and_writes_nothing(store, tmp_path):
    r = run_wattui(store, "record", "--simulate", "--session-id", "../../escaped",
                   "--", sys.executable, "-c", "pass")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "invalid session id" in r.stderr
    assert not (tmp_path / "escaped").exists() and not (store / "escaped").exists()
    assert not (store / "sessions").exists() or list((store / "sessions").iterdir()) == []


def test_a_given_id_that_exists_is_refused_and_the_session_kept(store):
    r = run_wattui(store, "record", "--simulate", "--session-id", "run-1",
                   "--", sys.executable, "-c", "pass")
    assert r.returncode == 0, r.stderr
    meta = (store / "sessions" / "run-1" / "meta.json").read_text()
    for extra in ([], ["--detach"]):
        r = run_wattui(store, "record", *extra, "--simulate", "--session-id", "run-1",
                       "--", sys.executable, "-c", "pass")
        assert r.returncode != 0
        assert "already exists" in r.stderr and "Traceback" not in r.stderr
    assert (store / "sessions" / "run-1" / "meta.json").read_text() == meta
    assert json.loads(meta)["status"] == "finished"


def test_detach_reserves_a_fresh_folder_when_its_first_id_is_taken(tmp_path, monkeypatch):
    from wattui.cli import record as cli
    from wattui.store import paths

    root = tmp_path / "store"
    taken = "20260101-000000-00000000"
    (root / "sessions" / taken).mkdir(parents=True)
    ids = iter([taken, taken, "20260101-000000-0000beef"])
    monkeypatch.setattr(paths, "new_session_id", lambda now=None: next(ids))
    sid = cli._reserve_session(root, None)
    assert sid == "20260101-000000-0000beef"
    assert list((root / "sessions" / sid).iterdir()) == []  # reserved, empty, ours
    with pytest.raises(cli.CliError, match="already exists"):
        cli._reserve_session(root, taken)  # an id the user gave is never replaced
