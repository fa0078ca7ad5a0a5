"""How the recorder waits for its run and answers signals (a part of
:class:`wattui.record.recorder.Recorder`, kept apart by concern).

Signals are answered from the first moment: before the run exists they stop the recording
from starting it; after, they are forwarded to the run's process group and logged as
events. While the session is being closed one more signal is noted; a second one ends the
recorder at once.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunSignals:
    """Mixin: needs ``signals_received`` (list), ``_child`` (the launched Popen or None),
    ``_lock`` and ``writer`` (the recorder's)."""

    signals_received: list[int]
    _child: subprocess.Popen | None

    def _wait_for(self, child: subprocess.Popen) -> None:
        """Sleep until the run ends or a signal comes (logged at once)."""
        self._sleep_until(child.pid, lambda: child.poll() is not None, self._log_signals, 0.1)

    def _wait_for_exit(self, pid: int, alive, stop: threading.Event) -> None:
        """Attached: sleep until process ``pid`` ends (``alive()`` says so) or ``stop`` is
        set (by a signal handler that also calls :meth:`_wake_main`). New processes in its
        tree reach the intake through the sampler's batches."""
        self._sleep_until(pid, lambda: stop.is_set() or not alive(), lambda: None, 0.25)

    def _sleep_until(self, pid: int, done, each, poll_s: float) -> None:
        """Until ``done()``, calling ``each()`` at every wake-up: woken by process ``pid``'s
        end or a signal handler (:meth:`_wake_main`), not a timer, where Linux gives a
        descriptor for the process (pidfd); else every ``poll_s``."""
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        if pidfd >= 0:
            try:
                wake_r, wake_w = os.pipe()
            except OSError:
                os.close(pidfd)
                pidfd = -1
        if pidfd < 0:
            while not done():
                each()
                time.sleep(poll_s)
            return
        os.set_blocking(wake_w, False)
        self._wake_fd = wake_w
        # poll, not select: the descriptors may be above FD_SETSIZE (1024) when the
        # recorder holds a /proc file per process of a large run, where select() raises
        waiter = select.poll()
        waiter.register(pidfd, select.POLLIN)
        waiter.register(wake_r, select.POLLIN)
        try:
            while not done():
                each()
                ready = waiter.poll(5000)
                if any(fd == wake_r for fd, _ in ready):
                    os.read(wake_r, 512)
        finally:
            self._wake_fd = None
            for fd in (pidfd, wake_r, wake_w):
                os.close(fd)

    def _wake_main(self) -> None:
        fd = self._wake_fd
        if fd is not None:
            try:
                os.write(fd, b"s")
            except OSError:  # full (already awake) or closed
                pass

    # -- signals ------------------------------------------------------------------
    _wake_fd: int | None = None  # written by signal handlers: wakes the main thread's wait
    _forwarded = 0  # signals already sent on to the run
    _logged_signals = 0  # signals already written as events
    _finishing = False
    _signals_at_finish = 0

    def _forward(self, signum, _frame) -> None:
        """Signal handler (main thread; takes no lock: the main thread may hold it)."""
        if self._second_while_finishing(signum):
            return
        self.signals_received.append(signum)
        if self._child is not None and not self._finishing:
            self._forwarded = len(self.signals_received)
            self._killpg(signum)
        self._wake_main()

    def _second_while_finishing(self, signum: int) -> bool:
        """While the session is being closed (a few seconds) one signal is noted; a second
        one ends the recorder at once, as if it had no handler."""
        if not self._finishing:
            return False
        if len(self.signals_received) <= self._signals_at_finish:
            return False
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return True

    def _killpg(self, signum: int) -> None:
        try:
            os.killpg(self._child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _log_signals(self) -> None:
        new = self.signals_received[self._logged_signals :]
        self._logged_signals += len(new)
        if not new:
            return
        with self._lock:
            if self.writer is not None:
                for signum in new:
                    self.writer.add_event({"kind": "signal", "message": signal.Signals(signum).name})

    @staticmethod
    def _install_handlers(handler) -> dict:
        old = {}
        if threading.current_thread() is threading.main_thread():
            for s in FORWARDED_SIGNALS:
                old[s] = signal.signal(s, handler)
        return old

    @staticmethod
    def _restore(old: dict) -> None:
        for s, h in old.items():
            signal.signal(s, h)
