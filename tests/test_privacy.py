"""Private by default: session files 0600 and folders 0700 (2770/0660 only in a store the
user made a group's), the report channel checked with lstat and refused loudly (never
followed, never silent: the run gets a fresh private directory), rename/tag never write
through a symlinked session.

The cross-user tests create a temporary second user with ``useradd`` (tests run as root
here) and act as that user in real processes; elsewhere they skip and say why.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, run_wattui

REPORTING = textwrap.dedent(
    """
    import wattui
    wattui.report(accuracy=0.875, epoch=1, total_epochs=1)
    """
)


def _record(store: Path, tmp: Path, *args, timeout=120, **env):
    script = tmp / "train.py"
    script.write_text(REPORTING)
    env.setdefault("WATTUI_CHANNEL_DIR", str(tmp / "chan"))
    return run_wattui(
        store, "record", "--simulate", "1", "--period", "0.05", *args, "--",
        sys.executable, str(script), timeout=timeout, **env,
    )


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[str(p.relative_to(root))] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def _only_session(store: Path) -> Path:
    (d,) = [p for p in (store / "sessions").iterdir() if not p.name.startswith(".")]
    return d


def test_store_is_private_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        store = tmp_path / "store"
        r = _record(store, tmp_path)
        assert r.returncode == 0, r.stderr
        r = run_wattui(store, "compare", "--format", "csv")  # writes the row cache
        assert r.returncode == 0, r.stderr
    finally:
        os.umask(old)
    modes = _modes(store)
    sid = _only_session(store).name
    assert f"sessions/{sid}/output.log" in modes and f"sessions/{sid}/meta.json" in modes
    assert ".cache" in modes
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700
    for rel, mode in modes.items():
        want = 0o700 if (store / rel).is_dir() else 0o600
        assert mode == want, (rel, oct(mode))


@pytest.mark.parametrize("made", ["store", "sessions"])
@pytest.mark.slow
def test_a_group_store_is_shared_with_the_group_only(tmp_path, made):
    store = tmp_path / "store"
    (store / "sessions").mkdir(parents=True)
    if made == "store":  # before the first recording: sessions/ is made by wattui
        (store / "sessions").rmdir()
    os.chmod(store if made == "store" else store / "sessions", 0o2770)  # the user asks
    old = os.umask(0o022)
    try:
        r = _record(store, tmp_path)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    d = _only_session(store)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o2770
    files = list(d.iterdir())
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o660 for f in files), [
        (f.name, oct(stat.S_IMODE(os.stat(f).st_mode))) for f in files
    ]


def _accuracy(store: Path) -> float | None:
    r = run_wattui(store, "show", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout).get("accuracy")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "open-dir", "file"])
@pytest.mark.slow
def test_an_unsafe_channel_directory_is_refused_loudly_and_not_followed(tmp_path, kind):
    chan = tmp_path / "chan"
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    if kind == "symlink":
        chan.symlink_to(target)  # a directory of ours, 0700: only the link is wrong
    elif kind == "fifo":
        os.mkfifo(chan)
    elif kind == "open-dir":
        chan.mkdir()
        os.chmod(chan, 0o777)
    else:
        chan.write_text("")
    store = tmp_path / "store"
    r = _record(store, tmp_path, WATTUI_CHANNEL_DIR=str(chan), timeout=60)
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "is not private" in ln]
    assert len(warn) == 1 and str(chan) in warn[0] and "using " in warn[0], r.stderr
    assert list(target.iterdir()) == []  # nothing written through the link
    assert _accuracy(store) == pytest.approx(0.875)  # report() still reached the recorder
    meta = json.loads((_only_session(store) / "meta.json").read_text())
    assert any("is not private" in n for n in meta.get("metric_notes", [])), meta.get("metric_notes")
    from wattui.store.reader import list_sessions

    (sess,), _ = list_sessions(store)  # a warning event: what the live screen's notes show
    msgs = sess.events().filter(kind="warning")["message"].to_list()
    assert any("is not private" in m for m in msgs), msgs


def test_report_refuses_a_symlinked_channel_directory(tmp_path):
    """The writer side: a process told to use a channel that is a symlink writes nothing."""
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "chan"
    link.symlink_to(target)
    code = "import wattui, wattui._report as r; wattui.report(accuracy=0.5); print(r.stats()['refused'])"
    env = dict(os.environ, WATTUI_CHANNEL_DIR=str(link), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 1
    assert list(target.iterdir()) == []


@pytest.mark.slow
def test_rename_and_tag_refuse_a_symlinked_session(tmp_path):
    store = tmp_path / "store"
    r = _record(store, tmp_path)
    assert r.returncode == 0, r.stderr
    real = _only_session(store)
    outside = tmp_path / "outside"
    shutil.copytree(real, outside / "s")
    (store / "sessions" / "linked").symlink_to(outside / "s")
    before = (outside / "s" / "meta.json").read_bytes()
    for args in (["rename", "linked", "new-name"], ["tag", "linked", "t1"]):
        r = run_wattui(store, *args)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert "symbolic link" in r.stderr, r.stderr
    assert (outside / "s" / "meta.json").read_bytes() == before
    # meta.json itself a symlink inside a real session folder: refused too
    m = real / "meta.json"
    (tmp_path / "meta-elsewhere.json").write_bytes(m.read_bytes())
    m.unlink()
    m.symlink_to(tmp_path / "meta-elsewhere.json")
    r = run_wattui(store, "rename", real.name, "x")
    assert r.returncode != 0 and "symbolic link" in r.stderr, r.stderr
    assert json.loads((tmp_path / "meta-elsewhere.json").read_text()).get("name") != "x"


# -- another user ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_user():
    if os.geteuid() != 0:
        pytest.skip("cross-user tests create a second user and need root (tests run as a user)")
    if not shutil.which("useradd") or not shutil.which("userdel"):
        pytest.skip("cross-user tests need useradd/userdel")
    name = f"wtu{secrets.token_hex(4)}"
    r = subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot create a second user: {r.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def _as(user, cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True,
        text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/"}, **kw,
    )


@pytest.fixture
def shared_tmp():
    """A world-traversable directory (tmp_path is root's own, 0700, which would hide
    everything whatever wattui does)."""
    d = Path(tempfile.mkdtemp(prefix="wattui-xuser-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_another_user_cannot_read_the_store(other_user, shared_tmp):
    old = os.umask(0o022)
    try:
        store = shared_tmp / "store"
        r = _record(store, shared_tmp)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    d = _only_session(store)
    for target in (d / "output.log", d / "meta.json", d / "events.parquet"):
        out = _as(other_user, ["cat", str(target)])
        assert out.returncode != 0 and "Permission denied" in out.stderr, (target, out)
    out = _as(other_user, ["ls", str(store / "sessions")])
    assert out.returncode != 0 and "Permission denied" in out.stderr


@pytest.mark.slow
def test_a_channel_directory_another_user_made_first_is_refused(other_user, shared_tmp):
    """The classic /tmp race: another user creates our channel directory first (0777,
    theirs) or as a symlink to theirs. The recorder says so on stderr, gives the run a
    private directory, and writes nothing where the other user can read it."""
    theirs = shared_tmp / "theirs"
    for kind in ("open-dir", "symlink"):
        chan = shared_tmp / f"chan-{kind}"
        if kind == "open-dir":
            script = f"mkdir -m 0777 {chan} && chmod 0777 {chan}"
        else:
            script = f"mkdir -p {theirs} && chmod 0777 {theirs} && ln -s {theirs} {chan}"
        os.chmod(shared_tmp, 0o1777)  # like /tmp, for this step
        try:
            r = _as(other_user, ["sh", "-c", script])
        finally:
            os.chmod(shared_tmp, 0o755)
        assert r.returncode == 0, r.stderr
        assert os.lstat(chan).st_uid == other_user.pw_uid
        store = shared_tmp / f"store-{kind}"
        out = _record(store, shared_tmp, WATTUI_CHANNEL_DIR=str(chan), timeout=60)
        assert out.returncode == 0, out.stderr
        assert "is not private" in out.stderr and str(chan) in out.stderr, out.stderr
        assert _accuracy(store) == pytest.approx(0.875)
        for place in (chan, theirs):
            if place.exists():
                assert list(Path(place).iterdir()) == [], list(Path(place).iterdir())


@pytest.mark.slow
def test_another_user_cannot_use_wattui_serve_without_the_token(other_user, shared_tmp):
    pytest.importorskip("textual_serve", reason="textual-serve is not installed")
    import re
    import signal
    import time

    store = shared_tmp / "store"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattui", "serve", "--port", "0", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=dict(os.environ, WATTUI_HOME=str(store)),
    )
    try:
        deadline = time.monotonic() + 30
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"on (http://\S+)/\?token=(\S+)", line)
            if m:
                url, token = m.group(1), m.group(2)
        assert url, "serve did not announce its URL"
        # The other user knows the port (ss/netstat show it) but not the token.
        out = _as(other_user, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/"])
        assert out.stdout == "403", out
        out = _as(other_user, [
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
            "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H", f"Origin: {url}", url + "/ws",
        ])
        assert out.stdout == "403", out
        own = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"{url}/?token={token}"], capture_output=True, text=True, timeout=30)
        assert own.stdout == "200"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_fifo_in_the_channel_never_blocks_report_or_the_recorder(tmp_path):
    """A FIFO where a process's event file should be: ``report()`` returns at once (and
    counts the failure), the recorder's reader skips it as foreign. Real processes under
    a timeout: a blocking open would hang them."""
    chan = tmp_path / "chan"
    chan.mkdir(mode=0o700)
    writer = textwrap.dedent(
        f"""
        import os, time
        os.mkfifo(os.path.join({str(chan)!r}, f"{{os.getpid()}}.ndjson"))
        import wattui, wattui._report as r
        t = time.monotonic()
        wattui.report(accuracy=0.5)
        print(round(time.monotonic() - t, 3), r.stats()["write_errors"] + r.stats()["refused"])
        """
    )
    env = dict(os.environ, WATTUI_CHANNEL_DIR=str(chan), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", writer], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    took, failures = out.stdout.split()
    assert float(took) < 1.0 and int(failures) >= 1
    reader = textwrap.dedent(
        f"""
        import os
        from wattui.metrics.channel import ReportChannel
        os.mkfifo(os.path.join({str(chan)!r}, "424242.ndjson"))
        ch = ReportChannel(lambda: {{424242}}, directory={str(chan)!r}, mark=False)
        print(len(ch.poll()), ch.rejections.as_dict().get("foreign_file", 0))
        """
    )
    out = subprocess.run([sys.executable, "-c", reader], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1"]
