"""Stopping a recorded run from outside the recorder (the live screen's quit dialog)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def stop_recorder(
    recorder_pid: int | None,
    recorder_started: float | None,
    grace_s: float = 10.0,
    wait_s: float = 5.0,
    should_stop: Callable[[], bool] | None = None,
    attached_pid: int | None = None,
) -> str:
    """Stop a run the way Ctrl+C would, then wait for its recorder to finish the session.

    Launch mode: SIGINT to the recorder, which forwards it to the run's process group.
    Attach mode (``attached_pid``): the recorder does not own the process, so SIGINT goes
    to the process itself; the recorder sees it end and finishes. Either way SIGTERM
    follows after ``grace_s`` if the recorder is still there. Blocking: call it from a
    thread. Returns what happened, in words."""
    import signal

    import psutil

    if not recorder_pid:
        return "no recorder to stop"
    try:
        p = psutil.Process(int(recorder_pid))
        if recorder_started is not None and abs(p.create_time() - float(recorder_started)) > 2.0:
            return "the recorder has already exited"
        os.kill(attached_pid or p.pid, signal.SIGINT)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return "the recorder has already exited"
    except (psutil.AccessDenied, PermissionError):
        return "not allowed to signal the run"

    def wait(seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if should_stop is not None and should_stop():
                return False
            try:
                if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            time.sleep(0.1)
        return False

    if wait(grace_s):
        return "stopped"
    try:
        if attached_pid:
            os.kill(attached_pid, signal.SIGTERM)
            if wait(wait_s):
                return "stopped"
            os.kill(p.pid, signal.SIGINT)  # the process ignores us: stop recording it
        else:
            p.terminate()
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
    except (psutil.AccessDenied, PermissionError):
        return "not allowed to signal the run"
    return "stopped" if wait(wait_s) else "the recorder did not exit"
