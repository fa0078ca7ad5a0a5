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

Cost: on a busy machine a tick's code runs with cold caches, several times slower than
warm. So a tick only reads (:meth:`PowerSource.capture`: for NVML the library calls and a
copy of their result); the readings are decoded (:meth:`PowerSource.decode`) and handed
to the listeners subscribed with :meth:`Sampler.subscribe_batch` (the recorder: rows,
totals) about a second's ticks at once, when :data:`BATCH_S` has passed or when anyone
asks (:meth:`Sampler.deliver`, :meth:`Sampler.newest`). The tick that hands out a batch,
and the first and last reads, are *full*; the others are *light*
(:meth:`PowerSource.capture`'s ``full``): sources leave out on them what they refresh
about once a second anyway (utilisation, processes, the run's share, the process tree),
whose rows would only repeat it. Between reads the thread sleeps (``time.sleep``, the
cheapest wait; a plain lock for waits longer than :data:`SLEEP_MAX_S`). A per-sample listener
(:meth:`Sampler.subscribe`) gets each sample at its read, decoded at once.

Where one source can have its light ticks taken by a native thread
(:meth:`PowerSource.native_ticks`: NVML with the compiled ticker) and every other source
reads nothing on light ticks, that thread takes every tick on the same schedule and this
one wakes about once a second, through a pipe, to make the newest tick full and hand out
the batch (:meth:`Sampler._run_native`); it takes the ticks itself again if the source
stops being able to.
"""

from __future__ import annotations

import os
import random
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from wattui.sources.base import DeviceInfo, NativeTicks, PowerSource, Sample

DEFAULT_PERIOD_S = 0.2
FAST_PERIOD_S = 0.1  # for sources that integrate power (no energy counter)
POWER_POLL_S = 0.02  # their power alone is read once in every slot this long
BATCH_S = 1.0  # batch listeners get the samples at least this often
SLEEP_MAX_S = 0.5  # waits up to this long are plain sleeps (stop() may wait one out)

Listener = Callable[[Sample], None]
BatchListener = Callable[[list[Sample]], None]


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
        self._batch_listeners: list[BatchListener] = []
        self._captured: list[tuple] = []  # (seq, t_mono, t_wall, captures) not decoded yet
        self._pending: list[Sample] = []  # decoded, not yet handed to the batch listeners
        self._next_batch = 0.0
        self._seq = 0
        self._stopped = False
        # held while running: stop() releases it, which ends the thread's timed wait
        self._stop_lock = threading.Lock()
        self._stop_lock.acquire()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()  # batches go out one at a time, in order
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._wait = wait if wait is not None else self._wait_for_stop
        # the source whose light ticks a native thread takes, while it does (_run_native)
        self._native: NativeTicks | None = None
        self._native_src: PowerSource | None = None
        self._wake_w: int | None = None  # the pipe the native thread wakes this one through
        self.native = False  # whether the ticks are (or were) taken by a native thread
        self.dropped_ticks = 0  # ticks its ring dropped because this thread was held up
        # (t0, slot of its last tick) of the native thread's schedule, which this thread's
        # own continues when it takes over: still one tick per slot
        self._native_slots: tuple[float, int] | None = None

    def _wait_for_stop(self, delay: float) -> bool:
        """Sleep ``delay`` s; True once stopped. A short wait is a plain ``time.sleep``
        (one clock_nanosleep: about 30 us less CPU per wake-up on this VM than a lock's
        timed wait, 5 times a second), so :meth:`stop` waits out at most that one sleep;
        a longer one waits on the stop lock, which :meth:`stop` releases."""
        if delay <= SLEEP_MAX_S:
            time.sleep(delay)
            return self._stopped
        if self._stop_lock.acquire(timeout=delay):
            self._stop_lock.release()  # stays released: every later wait returns at once
            return True
        return False

    def devices(self) -> list[DeviceInfo]:
        return [d for s in self.sources for d in s.devices()]

    def subscribe(self, listener: Listener) -> None:
        """``listener(sample)`` at every read, in the reading thread."""
        self._listeners.append(listener)

    def subscribe_batch(self, listener: BatchListener) -> None:
        """``listener(samples)``: every sample, in order, a batch at least every
        :data:`BATCH_S` and whenever :meth:`deliver` is called (:meth:`sample_once`, the
        first and last reads, deliver at once)."""
        self._batch_listeners.append(listener)

    def sample_once(self) -> Sample:
        """Read every source now and hand everything read so far to every listener (also
        used for the first and last sample)."""
        self._read(full=True)
        self.deliver()
        return self.latest

    def newest(self) -> Sample | None:
        """The last sample read (decoded now if it was not yet; any thread)."""
        with self._lock:
            self._decode()
            return self.latest

    def deliver(self) -> None:
        """Hand the samples read so far to the batch listeners now (any thread; never
        while holding a lock a listener takes)."""
        with self._deliver_lock:
            with self._lock:
                self._decode()
                batch, self._pending = self._pending, []
                self._next_batch = self._clock() + BATCH_S
                if self._native is not None:
                    self._native.wake_at(self._next_batch)
            if not batch:
                return
            for fn in self._batch_listeners:
                self._call(fn, batch)

    def _call(self, fn, arg) -> None:
        try:
            fn(arg)
        except Exception as e:  # noqa: BLE001
            self.errors += 1
            if self.errors <= 3:
                print(f"wattui: sample listener failed: {e!r}", file=sys.stderr)

    def _read(self, full: bool | None = None) -> float:
        """One tick's reads (decoded at once only for per-sample listeners); its time.
        The tick is full (see :meth:`PowerSource.capture`) when ``full`` says so or, by
        default, when it is the one that hands out the batch: about once a second."""
        with self._lock:
            t_mono = self._clock()
            if full is None:
                full = t_mono >= self._next_batch
            captures = []
            for src in self.sources:
                try:
                    captures.append(src.capture(t_mono, full))
                except Exception as e:  # noqa: BLE001 - one bad read must not end the session
                    captures.append(None)
                    self._failed(src, e)
            self._captured.append((self._seq, t_mono, time.time(), captures))
            self._seq += 1
            if not self._listeners:
                return t_mono
            first = len(self._pending)
            self._decode()
            fresh = self._pending[first:]
            if not self._batch_listeners:
                self._pending.clear()
        for s in fresh:
            for fn in self._listeners:
                self._call(fn, s)
        return t_mono

    def _count_dropped(self, native: NativeTicks) -> None:
        """Say (once) when the native thread's ring overflowed: this thread was held up
        for about :data:`~wattui.sources.native_ticks.RING_TICKS` ticks. Energy by counter
        loses nothing; integrated power is not read this way."""
        dropped = native.stats()[1]
        if dropped > self.dropped_ticks:
            if self.dropped_ticks == 0:
                print(f"wattui: {dropped} ticks dropped: the sampler was held up (energy by "
                      "counter is unaffected; the rows of that time are missing)", file=sys.stderr)
            self.dropped_ticks = dropped

    def _take_native(self, complete_last: bool = False) -> bool:
        """Move the native thread's ticks into the captured ones, in order (holding
        ``_lock``); the other sources' light captures are taken now (they read nothing on
        light ticks). ``complete_last``: the newest becomes the full tick. False if none."""
        native = self._native
        if native is None:
            return False
        ticks = native.drain()
        last = len(ticks) - 1
        if ticks and self._native_slots is not None:
            t0 = self._native_slots[0]
            self._native_slots = (t0, int((ticks[-1][0] - t0) // self.poll_s))
        for k, (t_mono, t_wall, cap) in enumerate(ticks):
            full = complete_last and k == last
            captures = []
            for src in self.sources:
                try:
                    if src is self._native_src:
                        captures.append(native.complete(cap) if full else cap)
                    else:
                        captures.append(src.capture(t_mono, full))
                except Exception as e:  # noqa: BLE001 - as for a read
                    captures.append(None)
                    self._failed(src, e)
            self._captured.append((self._seq, t_mono, t_wall, captures))
            self._seq += 1
        return last >= 0

    def _decode(self) -> None:
        """Turn the captured ticks into samples, in order (holding ``_lock``)."""
        if self._native is not None:
            self._take_native()
        if not self._captured:
            return
        captured, self._captured = self._captured, []
        for seq, t_mono, t_wall, captures in captured:
            readings = []
            for src, cap in zip(self.sources, captures):
                if cap is None:
                    continue
                try:
                    readings.extend(src.decode(cap))
                except Exception as e:  # noqa: BLE001 - as for a read
                    self._failed(src, e)
            s = Sample(seq, t_mono, t_wall, tuple(readings))
            self.latest = s
            self.recent.append(s)
            self._pending.append(s)

    def _failed(self, src: PowerSource, e: Exception) -> None:
        self.errors += 1
        if self.errors <= 3:
            print(f"wattui: {src.name} read failed: {e}", file=sys.stderr)

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

    def _native_source(self) -> PowerSource | None:
        """The one source whose light ticks a native thread can take, where every other
        reads nothing on light ticks and no tick needs this thread: no power polls, no
        per-sample listener, the real clock."""
        if self._polls or self._listeners or self._clock is not time.monotonic:
            return None
        if self._wait != self._wait_for_stop:
            return None
        tickers = [s for s in self.sources if s.reads_on_light_ticks]
        if len(tickers) != 1 or type(tickers[0]).native_ticks is PowerSource.native_ticks:
            return None
        return tickers[0]

    def _run_native(self) -> bool:
        """Take the ticks with a native thread and wake once a batch (:data:`BATCH_S`) to
        complete and hand out the newest; False where that cannot (start) or can no longer
        go on (the source said so): this thread takes the ticks from there."""
        src = self._native_src = self._native_source()
        if src is None:
            return False
        r, w = os.pipe()
        os.set_blocking(w, False)  # the native thread never blocks on it
        t0 = self._clock()
        try:
            native = src.native_ticks(t0, self.poll_s, self._rng.getrandbits(64), w)
        except Exception as e:  # noqa: BLE001 - Python ticks instead
            self._failed(src, e)
            native = None
        if native is None:
            os.close(r)
            os.close(w)
            return False
        self.native = True
        with self._lock:
            self._native_slots = (t0, -1)
            self._native = native
            self._wake_w = w
            self._next_batch = self._clock() + BATCH_S
            native.wake_at(self._next_batch)
        # poll, not select: the pipe's descriptor may be above FD_SETSIZE (a recorder
        # keeps a /proc file open per process of a large run), where select() raises
        waker = select.poll()
        waker.register(r, select.POLLIN)
        try:
            while not self._stopped and native.ok:
                ready = waker.poll(4000 * BATCH_S)
                if ready:
                    os.read(r, 512)
                if self._stopped:
                    break
                with self._lock:
                    took = self._take_native(complete_last=True)
                if not took and ready:
                    # another thread's newest() drained the tick that woke this one: the
                    # next tick is the full one (a read here would run beside the native
                    # thread's, and a tick it timed earlier would come after this one)
                    native.wake_at(self._clock())
                    continue
                self.deliver()
                self._count_dropped(native)
            return self._stopped
        finally:
            native.close()
            with self._lock:
                self._take_native()  # the ticks left in the ring
                self._native = None
                self._wake_w = None
            os.close(r)
            os.close(w)

    def _run(self) -> None:
        if self._run_native():
            return
        t0, last_slot = self._native_slots or (self._clock(), -1)
        schedule = self.read_times(t0)
        schedule.slot = last_slot
        slots_per_period = self.period_s / self.poll_s
        if abs(slots_per_period - round(slots_per_period)) < 1e-9:
            slots_per_period = round(slots_per_period)
        last_period = -1
        self._next_batch = self._clock() + BATCH_S
        while not self._stopped:
            now = self._clock()
            delay = schedule.next_read(now) - now
            if delay > 0 and self._wait(delay):
                break
            if self._stopped:
                break
            period = int(schedule.slot // slots_per_period)
            if period != last_period:
                last_period = period
                if self._read() >= self._next_batch:
                    self.deliver()
            else:
                self.poll_once()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wattui-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Sample:
        """Stop the thread and take one final sample, so the session ends on a read."""
        if not self._stopped:
            self._stopped = True
            self._stop_lock.release()
            with self._lock:
                if self._wake_w is not None:
                    try:
                        os.write(self._wake_w, b"s")
                    except OSError:
                        pass  # a full pipe wakes the thread as well
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
