"""One sampler thread per session: reads every source each period and hands an
immutable :class:`~wattui.sources.base.Sample` to each listener.

Memory is bounded however long the run: the sampler keeps only the latest sample
and a fixed-size ring of recent ones for late subscribers.

Read times are dithered: time is cut into slots of one period from the moment the
thread starts, and each slot is read once at a uniformly random moment inside it. A
fixed grid (``next_t += period``) reads a load that repeats at a multiple of the
period at the same phase every time, a bias that never averages out (about 10 % on a
0.5 s square load at 0.1 s); with dithered reads the trapezoids a source integrates
over the real read timestamps are unbiased (each reading's weight,
``(t[k+1] - t[k-1]) / 2``, is independent of the reading itself in expectation),
and what is left is a random error that shrinks as the run gets longer. The
session's first and last reads (:meth:`Sampler.sample_once` at start,
:meth:`Sampler.stop`) are its edges. See docs/measurement.md.

That random error is, per edge of the load, about the power step times a fraction of
the slot, whatever the schedule (a low-discrepancy offset such as a golden-ratio sequence
trades it for phase locks on some load periods: bench/bench_integration.py --sweep); only
shorter slots shrink it. So where a source integrates power (no energy counter) the
slots are :data:`POWER_POLL_S`: the first slot of each period gets the full read (rows,
live figures, at the usual period), the others a read of that power alone
(:meth:`PowerSource.poll_power`). That brings a square load within 1 % over 20 s.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from wattui.sources.base import DeviceInfo, PowerSource, Sample

DEFAULT_PERIOD_S = 0.2
FAST_PERIOD_S = 0.1  # for sources that integrate power (no energy counter)
POWER_POLL_S = 0.02  # their power alone is read once in every slot this long

Listener = Callable[[Sample], None]


class Sampler:
    def __init__(
        self,
        sources: list[PowerSource],
        period_s: float = DEFAULT_PERIOD_S,
        history: int = 600,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        poll_s: float = POWER_POLL_S,
    ):
        """``poll_s``: how often the power of sources without a counter is read (between
        full reads). ``rng`` draws the read times (seed it for a reproducible schedule); ``clock``
        and ``wait`` (sleep up to that long; True if stopped) replace the monotonic clock
        and the stop event's wait, for tests and benchmarks that run on a virtual clock."""
        if period_s <= 0 or poll_s <= 0:
            raise ValueError("the sampling period must be positive")
        self.sources = list(sources)
        if any(getattr(s, "needs_fast_poll", False) for s in self.sources):
            period_s = min(period_s, FAST_PERIOD_S)
        self.period_s = period_s
        self._polls = [
            s.poll_power
            for s in self.sources
            if getattr(s, "needs_fast_poll", False) and callable(getattr(s, "poll_power", None))
        ]
        # slots of the dithered schedule: POWER_POLL_S when some source integrates power
        self.poll_s = min(poll_s, period_s) if self._polls else period_s
        self.recent: deque[Sample] = deque(maxlen=history)
        self.latest: Sample | None = None
        self.errors = 0
        self._listeners: list[Listener] = []
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._wait = wait if wait is not None else self._stop.wait

    def devices(self) -> list[DeviceInfo]:
        return [d for s in self.sources for d in s.devices()]

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def sample_once(self) -> Sample:
        """Read every source now (also used for the first and last sample)."""
        with self._lock:
            t_mono = self._clock()
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

    def poll_once(self) -> None:
        """Read only the power of the sources that integrate it (between full reads)."""
        with self._lock:
            t_mono = self._clock()
            for poll in self._polls:
                try:
                    poll(t_mono)
                except Exception as e:  # noqa: BLE001 - as in sample_once
                    self.errors += 1
                    if self.errors <= 3:
                        print(f"wattui: power poll failed: {e}", file=sys.stderr)

    def read_times(self, t0: float) -> ReadSchedule:
        """The dithered schedule the thread follows from ``t0``: one read per slot of
        :attr:`poll_s`, a full read in the first slot of each period, a power poll in the
        others."""
        return ReadSchedule(t0, self.poll_s, self._rng)

    def _run(self) -> None:
        schedule = self.read_times(self._clock())
        slots_per_period = self.period_s / self.poll_s
        if abs(slots_per_period - round(slots_per_period)) < 1e-9:
            slots_per_period = round(slots_per_period)
        last_period = -1
        while not self._stop.is_set():
            now = self._clock()
            delay = schedule.next_read(now) - now
            if delay > 0 and self._wait(delay):
                break
            if self._stop.is_set():
                break
            period = int(schedule.slot // slots_per_period)
            if period != last_period:
                last_period = period
                self.sample_once()
            else:
                self.poll_once()

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


class ReadSchedule:
    """One read per slot ``[t0 + k*period, t0 + (k+1)*period)``, at a uniformly random
    moment inside it. A schedule that fell behind by whole slots (suspended, overloaded)
    resumes in the slot that holds ``now`` instead of bursting to catch up."""

    def __init__(self, t0: float, period_s: float, rng: random.Random):
        self.t0 = t0
        self.period_s = period_s
        self._rng = rng
        self.slot = -1  # the slot of the last read handed out

    def next_read(self, now: float) -> float:
        """The time of the next read (may be <= ``now``: read at once)."""
        k = self.slot + 1
        current = int((now - self.t0) // self.period_s)
        if current > k:  # whole slots went by without a read: skip them
            k = current
        self.slot = k
        return self.t0 + (k + self._rng.random()) * self.period_s
