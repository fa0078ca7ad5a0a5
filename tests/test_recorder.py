"""The headless recorder, driven as users drive it: real subprocesses, real signals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import run_wattui, show_json, wait_until, wattui_env

from wattui.sources.simulated import energy_between


def _session_dirs(store):
    d = store / "sessions"
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.exists() else []


@pytest.mark.slow
def test_simulated_energy_matches_closed_form(store):
    r = run_wattui(store, "record", "--simulate", "2", "--", sys.executable, "-c", "import time; time.sleep(2.5)")
    assert r.returncode == 0, r.stderr
    rec = show_json(store)
    assert rec["simulated"] is True
    assert rec["status"] == "finished"
    assert len(rec["gpus"]) == 2
    t0, t1 = rec["started_at"], rec["ended_at"]
    assert t1 - t0 > 2.0
    total = 0.0
    for g in rec["gpus"]:
        exact = energy_between(g["index"], t0, t1)
        assert g["energy_j"] == pytest.approx(exact, rel=0.005)
        assert g["method"] == "simulated"
        total += exact
    assert rec["energy_j"] == pytest.approx(total, rel=0.005)
    # Marked SIMULATED in the terminal too.
    assert "SIMULATED" in r.stderr


def test_exit_code_and_output_pass_through(store):
    code = "import sys; print('out-line'); print('err-line', file=sys.stderr); sys.exit(7)"
    r = run_wattui(store, "record", "--simulate", "--", sys.executable, "-c", code)
    assert r.returncode == 7
    assert "out-line" in r.stdout
    assert "err-line" in r.stderr
    rec = show_json(store)
    assert rec["status"] == "failed"
    assert rec["exit_code"] == 7
    out = (_session_dirs(store)[0] / "output.log").read_bytes()
    assert b"out-line" in out and b"err-line" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.slow
def test_signals_are_forwarded_to_the_run(store, tmp_path, sig):
    marker = tmp_path / "got"
    child = textwrap.dedent(
        f"""
        import signal, sys, time
        def h(s, f):
            open({str(marker)!r}, "w").write(signal.Signals(s).name)
            sys.exit(42)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, h)
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--", sys.executable, "-c", child],
        env=wattui_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 42, err
    assert marker.read_text() == sig.name
    rec = show_json(store)
    assert rec["exit_code"] == 42
    assert rec["status"] == "interrupted"


@pytest.mark.slow
def test_attach_follows_a_running_process_until_it_exits(store):
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        r = run_wattui(store, "record", "--simulate", "--pid", str(target.pid), timeout=30)
    finally:
        target.wait(timeout=10)
    assert r.returncode == 0, r.stderr
    rec = show_json(store)
    assert rec["mode"] == "attach"
    assert rec["pid"] == target.pid
    assert rec["status"] == "finished"
    assert rec["energy_j"] > 0
    assert rec["duration_s"] > 1.0


def test_attach_to_missing_pid_is_a_clear_error(store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    r = run_wattui(store, "record", "--simulate", "--pid", str(dead.pid))
    assert r.returncode == 2
    assert f"no process with PID {dead.pid}" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_bad_input_is_one_line_not_a_traceback(store):
    for args in (
        ["record"],
        ["record", "--simulate", "0", "--", "true"],
        ["record", "--period", "-1", "--", "true"],
        ["show", "no-such-session"],
        ["record", "--simulate", "--", "/no/such/program"],
    ):
        r = run_wattui(store, *args)
        assert r.returncode != 0, args
        assert "Traceback" not in r.stderr, (args, r.stderr)


@pytest.mark.slow
def test_kill_9_of_the_recorder_leaves_an_interrupted_readable_session(store):
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--", sys.executable, "-c",
         "import time; time.sleep(60)"],
        env=wattui_env(store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _session_dirs(store) and (_session_dirs(store)[0] / "live.json").exists())
        from wattui.store.reader import Session

        def flushed_a_second() -> bool:  # what the assertions below need on disk
            df = Session.open(_session_dirs(store)[0]).samples()
            return df.height >= 5 and df["t_wall"].max() - df["t_wall"].min() > 1.0

        assert wait_until(flushed_a_second, timeout=30, step=0.2)
        p.kill()
        p.wait(timeout=10)
    finally:
        sess = _session_dirs(store)
        if sess:
            meta = json.loads((sess[0] / "meta.json").read_text())
            if meta.get("pid"):
                try:
                    os.killpg(meta["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
    r = run_wattui(store, "sessions", "--format", "json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert len(recs) == 1
    assert recs[0]["status"] == "interrupted"
    assert recs[0]["energy_j"] > 0
    # The samples up to the last flush are readable with Polars.
    from wattui.store.reader import Session

    df = Session.open(_session_dirs(store)[0]).samples()
    assert df.height >= 5
    assert df["t_wall"].max() - df["t_wall"].min() > 1.0


@pytest.mark.slow
def test_without_a_gpu_it_says_so_and_still_records(store):
    r = run_wattui(store, "record", "--", "sleep", "3")
    assert r.returncode == 0, r.stderr
    assert "no GPU energy can be measured here" in r.stderr
    rec = show_json(store)
    assert rec["status"] == "finished"
    assert rec["simulated"] is False
    assert rec["gpus"] == []
    assert any("no GPU energy" in n for n in rec["notes"])


@pytest.mark.slow
def test_detach_returns_at_once_and_the_recording_completes(store):
    t = time.monotonic()
    code = "import time; print('run-output', flush=True); time.sleep(2)"
    r = run_wattui(store, "record", "--detach", "--simulate", "--", sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t < 10
    sid = r.stdout.strip()
    assert sid and (store / "sessions" / sid / "meta.json").exists()
    assert wait_until(lambda: show_json(store, sid)["status"] == "finished", timeout=30, step=0.3)
    rec = show_json(store, sid)
    assert rec["energy_j"] > 0
    # The run's output is kept once, in the session, not again in the recorder's log.
    assert b"run-output" in (store / "sessions" / sid / "output.log").read_bytes()
    assert "run-output" not in (store / "recorder-logs" / f"{sid}.log").read_text()


@pytest.mark.slow
def test_baseline_gives_energy_above_idle(store):
    r = run_wattui(store, "record", "--simulate", "--baseline", "1", "--", "sleep", "1.5")
    assert r.returncode == 0, r.stderr
    rec = show_json(store)
    assert rec["baseline"]["seconds"] == 1.0
    assert "gpu0" in rec["baseline"]["watts"]
    w = rec["baseline"]["watts"]["gpu0"]
    assert rec["energy_above_idle_j"] == pytest.approx(rec["energy_j"] - w * rec["duration_s"], rel=1e-6)


@pytest.mark.slow
def test_progress_bar_redraws_with_carriage_returns_are_read_as_lines(store):
    code = (
        "import sys, time\n"
        "for i in range(3):\n"
        "    sys.stdout.write(f'\\r{i}/3 [====] loss: 0.5 - val_accuracy: 0.{6 + i}000'); sys.stdout.flush()\n"
        "    time.sleep(1.5)\n"  # per-batch redraws are stored at most once a second
        "time.sleep(0.5)\n"
    )
    r = run_wattui(store, "record", "--simulate", "--", sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    rec = show_json(store)
    assert rec["accuracy"] == pytest.approx(0.8)
    assert rec["accuracy_reports"] == 3
    # Each redraw is read when it is drawn, not as one glued line when the run exits.
    from wattui.store.reader import find_session

    ev = find_session(store, rec["id"]).events()
    times = sorted(ev.filter(ev["accuracy"].is_not_null())["t_wall"].to_list())
    assert times[-1] - times[0] > 0.4


def test_an_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be")
    r = run_wattui(tmp_path, "record", "--store", str(blocker), "--simulate", "--", "true")
    assert r.returncode == 2
    assert "cannot create the session" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_wattui(tmp_path, "record", "--detach", "--store", str(blocker), "--simulate", "--", "true")
    assert r.returncode == 2 and "cannot use the store" in r.stderr
    assert "Traceback" not in r.stderr
