"""Rename, tag and delete sessions, from Python and from the CLI."""

from __future__ import annotations

import json
import os
import sys

import pytest
from compare_fixtures import make_corrupt, make_session

from wattui.store import manage
from wattui.store.paths import sessions_dir
from wattui.store.reader import list_sessions

A = "20261101-080000-a001"
B = "20261102-080000-b002"


@pytest.fixture
def store(tmp_path):
    make_session(tmp_path, A, name="first", tags=("x",), duration_s=600, period_s=60)
    make_session(tmp_path, B, name="second", duration_s=600, period_s=60)
    return tmp_path


def meta(root, sid):
    return json.loads((sessions_dir(root) / sid / "meta.json").read_text())


def test_rename(store):
    m = manage.rename(store, A, "  resnet-50 baseline ")
    assert m["name"] == "resnet-50 baseline" == meta(store, A)["name"]
    assert meta(store, A)["summary"]  # the rest of meta.json is kept
    manage.rename(store, "20261102-08", "by-prefix")
    assert meta(store, B)["name"] == "by-prefix"
    manage.rename(store, "by-prefix", "by-name")
    assert meta(store, B)["name"] == "by-name"
    assert not [p for p in (sessions_dir(store) / A).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "x" * 201])
def test_rename_refuses_bad_names(store, bad):
    with pytest.raises(manage.ManageError):
        manage.rename(store, A, bad)
    assert meta(store, A)["name"] == "first"


def test_tag_add_remove(store):
    assert manage.tag(store, A, ["paper", "x", "paper"])["tags"] == ["x", "paper"]
    assert manage.tag(store, A, ["x"], remove=True)["tags"] == ["paper"]
    assert meta(store, A)["tags"] == ["paper"]
    for bad in (["a b"], ["-x"], ["a,b"], []):
        with pytest.raises(manage.ManageError):
            manage.tag(store, A, bad)


def test_unknown_and_ambiguous_refs(store):
    with pytest.raises(manage.ManageError, match="no session"):
        manage.rename(store, "nope", "x")
    with pytest.raises(manage.ManageError, match="matches 2"):
        manage.tag(store, "2026110", ["x"])


def test_running_session_is_refused(tmp_path):
    make_session(tmp_path, A, status="running", duration_s=120)
    with pytest.raises(manage.ManageError, match="still recording"):
        manage.rename(tmp_path, A, "x")
    with pytest.raises(manage.ManageError, match="still recording"):
        manage.delete(tmp_path, A)
    assert (sessions_dir(tmp_path) / A).is_dir()


def test_delete(store):
    assert manage.delete(store, A) == A
    assert not (sessions_dir(store) / A).exists()
    sessions, problems = list_sessions(store)
    assert [s.id for s in sessions] == [B] and not problems
    assert not [p for p in sessions_dir(store).iterdir() if p.name.startswith(".")]


def test_delete_corrupt_by_directory_name(store):
    d = make_corrupt(store)
    assert manage.delete(store, d.name) == d.name
    assert not d.exists()


def test_delete_never_follows_symlinks_or_leaves_the_store(store, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "keep.txt").write_text("precious")
    link = sessions_dir(store) / "20261103-000000-link"
    os.symlink(outside, link)
    with pytest.raises(manage.ManageError):
        manage.delete(store, link.name)
    assert (outside / "keep.txt").exists()
    for ref in ("..", ".", "../..", "/etc", ""):
        with pytest.raises(manage.ManageError):
            manage.delete(store, ref)
    assert (sessions_dir(store) / A).exists()


# -- CLI -----------------------------------------------------------------------------------
def cli(argv, capsys, monkeypatch=None, stdin_tty=False, answer=None):
    import argparse

    from wattui.cli import CliError, compare
    from wattui.cli.common import COMMON

    if monkeypatch is not None:
        monkeypatch.setattr(sys.stdin, "isatty", lambda: stdin_tty, raising=False)
        if answer is not None:
            monkeypatch.setattr("builtins.input", lambda prompt="": answer)
    p = argparse.ArgumentParser(prog="wattui")
    compare.add_parser(p.add_subparsers(dest="cmd"), COMMON)
    args = p.parse_args(argv)
    try:
        rc = compare.run(args)
    except CliError as e:
        print(f"wattui: error: {e}", file=sys.stderr)
        rc = 2
    o = capsys.readouterr()
    return rc, o.out, o.err


def test_cli_rename_and_tag(store, capsys):
    rc, out, _ = cli(["rename", "--store", str(store), A, "new name"], capsys)
    assert rc == 0 and "new name" in out and meta(store, A)["name"] == "new name"
    rc, out, _ = cli(["tag", "--store", str(store), A, "p1", "p2"], capsys)
    assert rc == 0 and meta(store, A)["tags"] == ["x", "p1", "p2"]
    rc, out, _ = cli(["tag", "--store", str(store), A, "x", "--remove"], capsys)
    assert rc == 0 and meta(store, A)["tags"] == ["p1", "p2"]
    rc, _, err = cli(["tag", "--store", str(store), "zzz", "a"], capsys)
    assert rc == 2 and "no session" in err


def test_cli_rm_refuses_without_yes_when_not_a_tty(store, capsys, monkeypatch):
    rc, _, err = cli(["rm", "--store", str(store), A], capsys, monkeypatch, stdin_tty=False)
    assert rc == 2 and "--yes" in err
    assert (sessions_dir(store) / A).exists()


def test_cli_rm_asks_on_a_tty(store, capsys, monkeypatch):
    rc, out, _ = cli(["rm", "--store", str(store), A], capsys, monkeypatch, True, answer="n")
    assert rc == 1 and "nothing deleted" in out and (sessions_dir(store) / A).exists()
    rc, out, _ = cli(["rm", "--store", str(store), A], capsys, monkeypatch, True, answer="y")
    assert rc == 0 and f"deleted {A}" in out and not (sessions_dir(store) / A).exists()


def test_cli_rm_yes_several(store, capsys):
    rc, out, err = cli(["rm", "--store", str(store), "--yes", A, B, "missing"], capsys)
    assert rc == 2 and "no session" in err
    assert out.count("deleted") == 2
    assert list_sessions(store)[0] == []


def test_manage_never_imports_textual():
    import subprocess

    r = subprocess.run(
        [sys.executable, "-c", "import sys, wattui.store.manage; assert 'textual' not in sys.modules"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_cli_manages_a_group_as_one_run(tmp_path):
    """`wattui tag/rename/rm group:<ID>` act on every session of the multi-node run."""
    import json
    import subprocess
    import sys

    from compare_fixtures import GROUP_ID, make_group

    from wattui.store.reader import list_sessions

    root = tmp_path / "store"
    parts = make_group(root)

    def w(*args):
        return subprocess.run([sys.executable, "-m", "wattui", *args, "--store", str(root)],
                              capture_output=True, text=True, timeout=60)

    r = w("tag", f"group:{GROUP_ID}", "ablation")
    assert r.returncode == 0, r.stderr
    r = w("rename", f"group:{GROUP_ID}", "llm-ddp-v2")
    assert r.returncode == 0, r.stderr
    sessions, _ = list_sessions(root)
    assert len(sessions) == len(parts)
    assert all("ablation" in s.meta["tags"] and s.meta["name"] == "llm-ddp-v2" for s in sessions)
    rows = json.loads(w("compare", "--format", "json").stdout)
    assert [(x["id"], x["name"]) for x in rows["sessions"]] == [(f"group:{GROUP_ID}", "llm-ddp-v2")]
    r = w("rm", "--yes", f"group:{GROUP_ID}")
    assert r.returncode == 0, r.stderr
    assert list_sessions(root)[0] == []
    r = w("rm", "--yes", "group:nope")
    assert r.returncode == 2 and "no sessions in group 'nope'" in r.stderr


def test_cli_rm_of_nothing_that_matches_says_so_before_asking(store, capsys, monkeypatch):
    rc, _, err = cli(["rm", "--store", str(store), "nosuchid"], capsys, monkeypatch, stdin_tty=False)
    assert rc == 2 and "no session matches 'nosuchid'" in err and "--yes" not in err
    assert (sessions_dir(store) / A).exists()
