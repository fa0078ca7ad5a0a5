"""The store's record cache: `sessions` (and the comparison table) read only what changed,
never hide a changed or deleted session, and never trust a damaged cache; `show ID`
opens only the session it names."""

import json
import os
import stat

import polars as pl
import pytest
from compare_fixtures import make_demo_store, make_session
from conftest import run_wattui

from wattui.analysis import table as cmp
from wattui.sessions import RECORDS_VIEW, list_records
from wattui.store import manage, reader, schema
from wattui.store.record_cache import _digest, cache_path

FINISHED = "20261101-080000-a001"


def _listing(store, *, cache=True):
    recs, problems = list_records(store, cache=cache)
    return json.loads(json.dumps(recs)), problems


def _edit(path, name, change) -> None:
    """Change the cached value of session ``name`` as someone editing the file would,
    digest and all (a damaged entry fails its digest: that is tested apart)."""
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines):
        parts = line.split("\t")
        if parts[0] == name:
            value = json.loads(parts[3])
            change(value)
            text = json.dumps(value)
            lines[i] = "\t".join([name, parts[1], _digest(parts[1], text), text])
    path.write_text("\n".join(lines))


def _reads(monkeypatch) -> list[str]:
    """The session folders opened from here on."""
    opened: list[str] = []
    real = reader.Session.open.__func__

    def spy(cls, d):
        opened.append(os.path.basename(d))
        return real(cls, d)

    monkeypatch.setattr(reader.Session, "open", classmethod(spy))
    return opened


def test_cached_listing_equals_a_fresh_one_and_reads_only_unfinished(tmp_path, monkeypatch):
    make_demo_store(tmp_path)
    fresh = _listing(tmp_path, cache=False)
    assert not cache_path(tmp_path, RECORDS_VIEW).exists()
    assert _listing(tmp_path) == fresh  # fills the cache
    opened = _reads(monkeypatch)
    assert _listing(tmp_path) == fresh
    statuses = {r["id"]: r["status"] for r in fresh[0]}
    # only what the cache may not hold is read again: running sessions and the damaged
    assert FINISHED not in opened
    assert all(statuses.get(name) in (None, "running") for name in opened), opened
    path = cache_path(tmp_path, RECORDS_VIEW)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


@pytest.mark.slow
def test_the_cli_listing_is_the_same_with_and_without_the_cache(tmp_path):
    make_demo_store(tmp_path)
    cold = run_wattui(tmp_path, "sessions", "--format", "json")
    warm = run_wattui(tmp_path, "sessions", "--format", "json")
    assert cold.returncode == warm.returncode == 0, cold.stderr
    assert cache_path(tmp_path, RECORDS_VIEW).exists()
    assert json.loads(warm.stdout) == json.loads(cold.stdout)
    assert warm.stderr == cold.stderr  # the damaged sessions are still reported


def test_changed_deleted_and_new_sessions_are_never_hidden(tmp_path):
    make_demo_store(tmp_path, corrupt=False)
    _listing(tmp_path)
    manage.rename(tmp_path, FINISHED, "renamed")
    manage.delete(tmp_path, "20261102-090000-a002")
    make_session(tmp_path, "20261120-080000-z001", name="newcomer")
    recs, _ = _listing(tmp_path)
    by_id = {r["id"]: r for r in recs}
    assert by_id[FINISHED]["name"] == "renamed"
    assert "20261102-090000-a002" not in by_id
    assert by_id["20261120-080000-z001"]["name"] == "newcomer"
    assert _listing(tmp_path) == _listing(tmp_path, cache=False)


def test_replaced_events_are_read_again(tmp_path):
    make_demo_store(tmp_path, corrupt=False)
    before = {r["id"]: r for r in _listing(tmp_path)[0]}[FINISHED]
    d = tmp_path / "sessions" / FINISHED
    ev = pl.read_parquet(d / schema.EVENTS_FINAL)
    ev = ev.with_columns(pl.col("accuracy") * 0.5)
    ev.write_parquet(d / ".ev.tmp")
    os.replace(d / ".ev.tmp", d / schema.EVENTS_FINAL)  # meta.json untouched
    after = {r["id"]: r for r in _listing(tmp_path)[0]}[FINISHED]
    assert after["accuracy"] == pytest.approx(before["accuracy"] * 0.5)


@pytest.mark.parametrize(
    "damage",
    ["junk", "truncated", "flipped", "wrong types", "other version", "symlink", "directory"],
)
@pytest.mark.slow
def test_a_damaged_cache_is_rebuilt_never_trusted(tmp_path, damage):
    make_demo_store(tmp_path)
    fresh = _listing(tmp_path, cache=False)
    _listing(tmp_path)
    path = cache_path(tmp_path, RECORDS_VIEW)
    text = path.read_text()
    if damage == "junk":
        path.write_text("{not json")
    elif damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "flipped":  # one changed byte in an entry: its digest fails
        i = text.index("vit-h14")
        path.write_text(text[:i] + "VIT" + text[i + 3 :])
    elif damage == "wrong types":
        for name in [line.split("\t")[0] for line in text.split("\n")[1:]]:
            _edit(path, name, lambda v: v.update(gpus="x", energy_j="lots"))
    elif damage == "other version":
        path.write_text(text.replace("wattui-record-cache 2", "wattui-record-cache 3", 1))
    elif damage == "symlink":
        other = tmp_path / "elsewhere.txt"
        other.write_text(text)
        path.unlink()
        path.symlink_to(other)
    else:
        path.unlink()
        path.mkdir()
    assert _listing(tmp_path) == fresh
    r = run_wattui(tmp_path, "sessions", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == fresh[0], r.stderr


def test_cached_strings_are_sanitised_again(tmp_path):
    make_demo_store(tmp_path, corrupt=False)
    _listing(tmp_path)
    path = cache_path(tmp_path, RECORDS_VIEW)
    _edit(path, FINISHED, lambda v: v.update(name="evil\x1b]0;owned\x07name"))
    (rec,) = [r for r in _listing(tmp_path)[0] if r["id"] == FINISHED]
    assert rec["name"] == "evilname"
    r = run_wattui(tmp_path, "sessions", "--format", "json")
    assert "\\u001b" not in r.stdout and "\x1b" not in r.stdout
    assert [x["name"] for x in json.loads(r.stdout) if x["id"] == FINISHED] == ["evilname"]


def test_the_comparison_table_uses_the_same_cache(tmp_path, monkeypatch):
    make_demo_store(tmp_path)
    first = cmp.load_table(tmp_path)
    assert cmp.cache_path(tmp_path).parent == cache_path(tmp_path, RECORDS_VIEW).parent
    opened = _reads(monkeypatch)
    second = cmp.load_table(tmp_path)
    assert FINISHED not in opened
    assert second.frame.drop("sam_reason").equals(first.frame.drop("sam_reason"))
    _edit(cmp.cache_path(tmp_path), FINISHED, lambda v: v.update(energy_j="lots"))
    third = cmp.load_table(tmp_path)
    assert FINISHED in opened
    assert third.frame.drop("sam_reason").equals(first.frame.drop("sam_reason"))


def test_show_by_id_opens_only_that_session(tmp_path, monkeypatch):
    make_demo_store(tmp_path)
    opened = _reads(monkeypatch)
    assert reader.find_session(tmp_path, FINISHED).id == FINISHED
    assert opened == [FINISHED]
    opened.clear()
    assert reader.find_session(tmp_path, "20261101-0800").id == FINISHED  # a unique prefix
    assert opened == [FINISHED]
    opened.clear()
    newest = reader.find_session(tmp_path, None)
    assert newest.id == sorted(r["id"] for r in _listing(tmp_path, cache=False)[0])[-1]
    with pytest.raises(LookupError, match="matches"):
        reader.find_session(tmp_path, "2026110")  # ambiguous: the listing's message
    assert reader.find_session(tmp_path, "vit-h14").meta["name"] == "vit-h14"  # by name


def test_show_reads_the_cached_record_and_never_a_stale_one(tmp_path, monkeypatch):
    from wattui.sessions import cached_record, session_record

    make_demo_store(tmp_path, corrupt=False)
    fresh = json.loads(run_wattui(tmp_path, "show", "--format", "json", FINISHED).stdout)
    _listing(tmp_path)  # fills the cache
    assert json.loads(run_wattui(tmp_path, "show", "--format", "json", FINISHED).stdout) == fresh
    s = reader.Session.open(tmp_path / "sessions" / FINISHED)
    monkeypatch.setattr(reader.Session, "events", lambda self: pytest.fail("events read"))
    record = {k: v for k, v in fresh.items() if k != "windows"}  # show adds its windows
    assert json.loads(json.dumps(cached_record(s))) == record  # from the cache alone
    monkeypatch.undo()
    manage.rename(tmp_path, FINISHED, "renamed-since")
    s = reader.Session.open(tmp_path / "sessions" / FINISHED)
    assert cached_record(s)["name"] == "renamed-since"
    _listing(tmp_path)
    _edit(cache_path(tmp_path, RECORDS_VIEW), FINISHED, lambda v: v.update(name="x\x1b[2Jy"))
    assert cached_record(s)["name"] == "xy"
    text = cache_path(tmp_path, RECORDS_VIEW).read_text()
    cache_path(tmp_path, RECORDS_VIEW).write_text(text.replace("xy", "zz").replace("x\\u001b[2Jy", "q"))
    assert cached_record(s) == session_record(s)  # a damaged line: read from the files


def test_show_from_a_warm_cache_reads_no_table_files(tmp_path):
    """After a listing, `show` of a session with no measure windows answers from the cache:
    polars (the cost of reading events and samples) is never imported."""
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    store = tmp_path / "store"
    shutil.copytree(REPO / "sample_runs" / "store", store)
    sid = sorted(p.name for p in (store / "sessions").iterdir())[0]
    assert run_wattui(store, "sessions").returncode == 0
    code = (
        "import io, sys, contextlib\n"
        "from wattui import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    rc = cli.main(['show', '--store', {str(store)!r}, {sid!r}])\n"
        "print(rc, 'polars' in sys.modules, 'energy' in out.getvalue())\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == ["0", "False", "True"], p.stdout + p.stderr
