"""One sampler thread per session: reads every source each period and hands an
immutable :class:`~wattui.sources.base.Sample` to each listener.

Memory is bounded however long the run: the sampler keeps only the latest sample
and a fixed-size ring of recent ones for late subscribers.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from .sources.base import DeviceInfo, PowerSource, Sample

DEFAULT_PERIOD_S = 0.2
FAST_PERIOD_S = 0.1  # for sources that integrate power (no energy counter)

Listener = Callable[[Sample], None]


class Sampler:
    def __init__(
        self,
        sources: list[PowerSource],
        period_s: float = DEFAULT_PERIOD_S,
        history: int = 600,
    ):
        if period_s <= 0:
            raise ValueError("the sampling period must be positive")
        self.sources = list(sources)
        if any(getattr(s, "needs_fast_poll", False) for s in self.sources):
            period_s = min(period_s, FAST_PERIOD_S)
        self.period_s = period_s
        self.recent: deque[Sample] = deque(maxlen=history)
        self.latest: Sample | None = None
        self.errors = 0
        self._listeners: list[Listener] = []
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def devices(self) -> list[DeviceInfo]:
        return [d for s in self.sources for d in s.devices()]

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def sample_once(self) -> Sample:
        """Read every source now (also used for the first and last sample)."""
        with self._lock:
            t_mono = time.monotonic()
            t_wall = time.time()
            readings = []
            for src in self.sources:
                try:
                    readings.extend(src.read(t_mono))
                except Exception as e:  # noqa: BLE001 - one bad read must not end the session
                    self.errors += 1
                    if self.errors <= 3:
                        print(f"wattui: {src.name} read failed: {e}", file=sys.stderr)
            s = Sample(self._seq, t_mono, t_wall, tuple(readings))
            self._seq += 1
            self.latest = s
            self.recent.append(s)
        for fn in self._listeners:
            try:
                fn(s)
            except Exception as e:  # noqa: BLE001
                self.errors += 1
                if self.errors <= 3:
                    print(f"wattui: sample listener failed: {e!r}", file=sys.stderr)
        return s

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_t += self.period_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (suspended, overloaded): don't burst to catch up
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wattui-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Sample:
        """Stop the thread and take one final sample, so the session ends on a read."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.sample_once()

    def close(self) -> None:
        for s in self.sources:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass
