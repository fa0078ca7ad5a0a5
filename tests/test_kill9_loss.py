"""kill -9 of the recorder at any moment loses at most the last second of samples, of the
run's output and of the metrics parsed from it (flushes are at least once a second; output
is written as it comes)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import kill_run_group, wattui_env

from wattui.store.reader import Session

FLUSH_S = 1.0
SLACK_S = 0.6  # scheduling on a loaded machine: a flush can be a little late

CHILD = (
    "import time\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    print(f'at {time.time():.3f} val_accuracy: {i % 1000 / 1000:.3f}', flush=True)\n"
    "    time.sleep(0.02)\n"
)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_at_most_the_last_second(store):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for k in range(3):
        p = subprocess.Popen(
            [sys.executable, "-m", "wattui", "record", "--simulate", "--no-passthrough",
             "--session-id", f"kill-{k}", "--", sys.executable, "-c", CHILD],
            env=wattui_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        sdir = store / "sessions" / f"kill-{k}"
        try:
            end = time.monotonic() + 30
            while not (sdir / "output.log").exists() or (sdir / "output.log").stat().st_size == 0:
                assert time.monotonic() < end and p.poll() is None, p.stderr.read().decode()
                time.sleep(0.05)
            time.sleep(rng.uniform(0.3, 2.5))  # a random moment to kill at: the test
            t_kill = time.time()
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
            kill_run_group(sdir)
        s = Session.open(sdir)
        assert s.status == "interrupted"
        samples = s.samples()
        horizon = t_kill - FLUSH_S - SLACK_S  # everything older than this must be on disk
        out = [float(ln.split()[1]) for ln in (sdir / "output.log").read_text().splitlines() if ln]
        ev = s.events()
        metrics = ev.filter(ev["kind"] == "metric")["t_wall"]
        why = f"seed {seed}, kill {k}: killed at {t_kill:.3f}"
        assert samples["t_wall"].max() >= horizon, f"{why}, last sample {samples['t_wall'].max()}"
        assert out[-1] >= horizon, f"{why}, last output line {out[-1]:.3f}"
        if out[0] < horizon:  # the run printed metrics before the horizon: those are kept
            assert len(metrics) and metrics.max() >= horizon, f"{why}, last metric {metrics.max()}"
