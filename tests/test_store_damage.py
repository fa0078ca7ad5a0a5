"""A store damaged in many ways (every case of issue 13 and more): every reader lists the
good sessions, names each bad one in one line and skips it, never hangs (FIFOs), never
reads without end (/dev/zero), never prints a traceback.

The readers run as real processes (`sessions`, `show`, `compare --format ...`, `rm`,
`tag`, `rename`) under a timeout, and in process (the comparison table the screens and
`serve` use, the details screen's record, the live view's snapshot builder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from conftest import REPO, run_wattui
from screen_waits import compare_loaded, details_loaded

SAMPLES = REPO / "sample_runs" / "store" / "sessions"
GOOD = sorted(p.name for p in SAMPLES.iterdir())[:2]
TEMPLATE = GOOD[0]


def _meta() -> dict:
    return json.loads((SAMPLES / TEMPLATE / "meta.json").read_text())


def _copy(store: Path, name: str) -> Path:
    d = store / "sessions" / name
    shutil.copytree(SAMPLES / TEMPLATE, d)
    return d


def _with_meta(store: Path, name: str, change) -> None:
    d = _copy(store, name)
    m = _meta()
    m["id"] = name
    change(m)
    (d / "meta.json").write_text(json.dumps(m))


def _raw_meta(store: Path, name: str, text: bytes) -> None:
    d = _copy(store, name)
    (d / "meta.json").write_bytes(text)


def _live(store: Path, name: str) -> Path:
    """A session killed while live: CSV/NDJSON files, no Parquet, a dead recorder."""
    d = _copy(store, name)
    m = _meta()
    m.update(id=name, status="running", recorder_pid=2**22 + 7, summary=None)
    (d / "meta.json").write_text(json.dumps(m))
    (d / "samples.parquet").unlink()
    (d / "events.parquet").unlink()
    (d / "samples.csv").write_text("t_wall,t_mono,seq,device,energy_j,power_w\n1.0,1.0,0,gpu0,0.0,100.0\n")
    (d / "events.ndjson").write_text("")
    return d


def _dev(m, v):
    m["devices"] = v


# name -> how it is damaged. Each bad session must be named in a problem line; the
# files of "warn" cases are damaged but the session stays listed.
def build(store: Path) -> tuple[set[str], set[str]]:
    (store / "sessions").mkdir(parents=True)
    for g in GOOD:
        shutil.copytree(SAMPLES / g, store / "sessions" / g)
    bad = {
        "devices-str": lambda m: _dev(m, "gpu0"),
        "device-no-key": lambda m: [d.pop("key") for d in m["devices"]],
        "device-key-int": lambda m: m["devices"][0].__setitem__("key", 3),
        "started-str": lambda m: m.__setitem__("started_at", "yesterday"),
        "started-huge": lambda m: m.__setitem__("started_at", 10**400),
        "summary-list": lambda m: m.__setitem__("summary", [1, 2]),
        "summary-str-energy": lambda m: m["summary"][next(iter(m["summary"]))].__setitem__(
            "energy_j", "lots"
        ),
        "id-int": lambda m: m.__setitem__("id", 5),
        "id-path": lambda m: m.__setitem__("id", "../../x"),
        "tags-str": lambda m: m.__setitem__("tags", "paper"),
        "command-str": lambda m: m.__setitem__("command", "python train.py"),
        "notes-dict": lambda m: m.__setitem__("notes", {"a": 1}),
        "exit-float": lambda m: m.__setitem__("exit_code", 1.5),
        "baseline-str": lambda m: m.__setitem__("baseline", {"watts": {"gpu0": "x"}}),
        "accuracy-str": lambda m: m.__setitem__("accuracy", "0.9"),
        "schema-str": lambda m: m.__setitem__("schema_version", "1"),
    }
    for name, change in bad.items():
        # json.dumps cannot write 10**400 as a float but writes the int: the real case
        _with_meta(store, name, change)
    raw = {
        "nested": b"[" * 100_000,
        "nested-obj": b'{"id": "nested-obj", "x": ' + b"[" * 100_000,
        "empty-meta": b"",
        "truncated-meta": json.dumps(_meta()).encode()[:200],
        "binary-meta": bytes(range(256)) * 4,
        "list-meta": b"[1, 2, 3]",
        "not-utf8": b'{"id": "\xff\xfe"}',
    }
    for name, text in raw.items():
        _raw_meta(store, name, text)
    s = store / "sessions"
    # no meta.json at all; meta.json a directory; a FIFO; a symlink to another file
    _copy(store, "no-meta").joinpath("meta.json").unlink()
    d = _copy(store, "meta-dir")
    (d / "meta.json").unlink()
    (d / "meta.json").mkdir()
    d = _copy(store, "meta-fifo")
    (d / "meta.json").unlink()
    os.mkfifo(d / "meta.json")
    d = _copy(store, "meta-symlink")
    (d / "meta.json").unlink()
    (d / "meta.json").symlink_to(SAMPLES / GOOD[1] / "meta.json")
    # a symlink loop, a dangling link, a link to a real session, a plain file
    (s / "loop").symlink_to(s / "loop")
    (s / "dangling").symlink_to(store / "nowhere")
    (s / "link-to-good").symlink_to(s / GOOD[0])
    (s / "plain-file").write_text("hello")
    # live sessions with hostile files: readers must neither hang nor read without end
    for name, fname in (
        ("events-fifo", "events.ndjson"),
        ("samples-fifo", "samples.csv"),
        ("live-fifo", "live.json"),
    ):
        d = _live(store, name)
        (d / fname).unlink(missing_ok=True)
        os.mkfifo(d / fname)
    d = _live(store, "samples-zero")
    (d / "samples.csv").unlink()
    (d / "samples.csv").symlink_to("/dev/zero")
    if os.geteuid() == 0:  # a device node itself, not a link to one (mknod needs root)
        d = _live(store, "samples-chardev")
        (d / "samples.csv").unlink()
        os.mknod(d / "samples.csv", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    d = _live(store, "events-zero")
    (d / "events.ndjson").unlink()
    (d / "events.ndjson").symlink_to("/dev/zero")
    d = _live(store, "live-types")
    (d / "live.json").write_text(json.dumps({"t_wall": "now", "devices": [1]}))
    d = _live(store, "live-nested")
    (d / "live.json").write_text("[" * 100_000)
    d = _live(store, "events-junk")
    (d / "events.ndjson").write_bytes(b'{"kind": "metric", "accuracy": "x"}\n\x00\xff{{{\n[[[[\n')
    # finished sessions whose Parquet files are damaged
    d = _copy(store, "events-truncated")
    m = _meta()
    m["id"] = "events-truncated"
    (d / "meta.json").write_text(json.dumps(m))
    data = (d / "events.parquet").read_bytes()
    (d / "events.parquet").write_bytes(data[: len(data) // 2])
    d = _copy(store, "samples-garbage")
    m = dict(m, id="samples-garbage", summary=None)
    (d / "meta.json").write_text(json.dumps(m))
    (d / "samples.parquet").write_bytes(b"PAR1 not really")
    d = _copy(store, "events-fifo-final")
    m = dict(m, id="events-fifo-final")
    (d / "meta.json").write_text(json.dumps(m))
    (d / "events.parquet").unlink()
    os.mkfifo(d / "events.parquet")
    skipped = set(bad) | set(raw) | {
        "no-meta",
        "meta-dir",
        "meta-fifo",
        "meta-symlink",
        "loop",
        "dangling",
        "link-to-good",
        "plain-file",
    }
    warned = {
        "live-fifo",
        "samples-zero",
        "samples-fifo",
        "events-fifo",
        "events-zero",
        "live-types",
        "live-nested",
        "events-truncated",
        "events-fifo-final",
    }
    if os.geteuid() == 0:
        warned.add("samples-chardev")
    return skipped, warned


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    store = tmp_path_factory.mktemp("damaged") / "store"
    skipped, warned = build(store)
    return store, skipped, warned


def _has(text: str, name: str) -> bool:
    """``name`` as a whole word of ``text`` (``nested`` is not in ``live-nested``)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def _problem_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("wattui: warning:")]


def _check_listing(r, store, skipped, warned, ids_in_stdout=True):
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = _problem_lines(r.stderr)
    for name in skipped:
        hits = [ln for ln in lines if f": {name}:" in ln or f" {name}: " in ln]
        assert len(hits) == 1, (name, lines)
    for name in warned:
        assert any(name in ln for ln in lines), (name, lines)
    for g in GOOD:
        assert g in r.stdout
    for name in skipped:
        assert not _has(r.stdout, name), name
    return lines


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_sessions_lists_the_good_and_names_each_bad_once(damaged, fmt):
    store, skipped, warned = damaged
    r = run_wattui(store, "sessions", "--format", fmt, timeout=120)
    _check_listing(r, store, skipped, warned)
    for name in warned - {"events-truncated", "events-fifo-final"}:
        assert _has(r.stdout, name), name  # still listed: only a file of it is unusable


def test_truncated_events_parquet_keeps_the_accuracy_and_says_so(damaged):
    store, _, _ = damaged
    r = run_wattui(store, "show", "events-truncated", "--format", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["accuracy"] == pytest.approx(_meta()["accuracy"])
    assert any("events.parquet is unreadable" in p for p in rec["problems"])
    assert "events.parquet is unreadable" in r.stderr and "accuracy" in r.stderr


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "latex"])
def test_compare_exports_list_the_good_and_name_each_bad(damaged, fmt):
    store, skipped, warned = damaged
    r = run_wattui(store, "compare", "--format", fmt, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    for name in skipped:
        assert _has(r.stderr, name), name
    if fmt == "json":  # the export carries its problems: every skipped one named there
        doc = json.loads(r.stdout)
        ids = {row["id"] for row in doc["sessions"]}
        assert set(GOOD) <= ids and not ids & skipped
        assert all(any(_has(p, n) for p in doc["problems"]) for n in skipped)
    else:
        assert not any(_has(r.stdout, name) for name in skipped)
    names = {json.loads((SAMPLES / g / "meta.json").read_text())["name"] for g in GOOD}
    assert all(n in r.stdout for n in names)


def test_show_names_the_damage_of_a_bad_session_in_one_line(damaged):
    store, _, _ = damaged
    for name in ("devices-str", "nested", "meta-fifo", "id-int", "started-huge"):
        r = run_wattui(store, "show", name, timeout=60)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and name in err[0], err
    r = run_wattui(store, "show", timeout=60)  # the newest readable one
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_in_process_readers_never_break(damaged):
    """The comparison table (screens, exports, serve's tabs), the details record and the
    live view's snapshot builder on every session directory."""
    from wattui.analysis.table import load_table
    from wattui.sessions import records_of
    from wattui.store.reader import list_sessions
    from wattui.view.snapshot import SnapshotBuilder

    store, skipped, warned = damaged
    table = load_table(store, cache=False)
    ids = set(table.ids)
    assert set(GOOD) <= ids
    assert not ids & skipped
    for name in skipped:
        assert any(name in p for p in table.problems), name
    sessions, problems = list_sessions(store)
    recs = records_of(sessions, problems)
    assert {r["id"] for r in recs} >= set(GOOD)
    for s in sessions:
        table.record(s.id)
        b = SnapshotBuilder(s.dir)
        for _ in range(3):
            snap = b.poll()
        assert snap.session_id == s.id


def test_rm_removes_damaged_sessions_without_hanging(damaged, tmp_path):
    store = tmp_path / "store"
    build(store)
    for name in ("meta-fifo", "events-fifo", "live-fifo", "nested", "devices-str"):
        r = run_wattui(store, "rm", name, "--yes", timeout=60)
        assert r.returncode == 0, (name, r.stderr)
        assert not os.path.lexists(store / "sessions" / name)
    # a symlinked "session" is refused, and what it points to is left alone
    r = run_wattui(store, "rm", "link-to-good", "--yes", timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert (store / "sessions" / GOOD[0] / "meta.json").exists()
    r = run_wattui(store, "tag", "events-fifo", "x", timeout=60)
    assert "Traceback" not in r.stderr


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.slow
async def test_comparison_and_details_screens_on_the_damaged_store(damaged):
    """The screens (and `serve`, whose tabs run this screen): the good rows and the
    damaged-but-readable ones listed, the skipped ones counted in the notice; the
    details screen of a session whose files are damaged opens and says so."""
    from wattui.tui.compare import CompareApp, CompareScreen, SessionTable
    from wattui.tui.details import DetailsScreen

    store, skipped, warned = damaged
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=(200, 50)) as pilot:
        scr = await compare_loaded(pilot)
        assert isinstance(scr, CompareScreen)
        ids = set(scr.query_one(SessionTable).row_keys)
        assert set(GOOD) <= ids and not ids & skipped
        notice = str(scr.query_one("#cmp-notice").render())
        assert "unreadable" in notice
        for sid in ("events-truncated", "samples-garbage", "events-fifo", "samples-zero"):
            table = scr.query_one(SessionTable)
            table.move_cursor(row=list(table.row_keys).index(sid))
            await pilot.press("enter")
            assert isinstance(await details_loaded(pilot), DetailsScreen), sid
            if sid == "events-truncated":
                from textual.widgets import Static

                meta_text = str(app.screen.query_one("#det-meta-text", Static).render())
                assert "events.parquet is unreadable" in meta_text, meta_text
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen)
