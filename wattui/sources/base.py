"""The one interface every power source implements, and the records it produces.

A source owns one or more *devices* (a GPU, a CPU package, DRAM). Each call to
:meth:`PowerSource.read` returns one :class:`DeviceReading` per device, with the
device's energy *since the source was opened* (joules) and its live power.
Every figure carries the method that produced it, so nothing reaches a screen
or a file without saying how it was obtained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

# Energy methods
COUNTER = "counter"  # read from a hardware energy counter (NVML total energy, RAPL)
INTEGRATED = "integrated"  # integrated from polled power
ESTIMATED = "estimated"  # derived from a model, not measured
SIMULATED = "simulated"  # a simulated device: a known function of time

# Power methods (what the live watts figure is)
INSTANT = "instant"  # instantaneous sensor reading
AVERAGE_1S = "average-1s"  # the driver's 1-second moving average
DERIVED = "derived"  # dE/dt from the energy counter between two reads

ENERGY_METHODS = (COUNTER, INTEGRATED, ESTIMATED, SIMULATED)
POWER_METHODS = (INSTANT, AVERAGE_1S, DERIVED, ESTIMATED, SIMULATED)


class SourceUnavailable(Exception):
    """A source cannot be used on this machine. The message is one line that says
    why and, where there is one, how to fix it."""


@dataclass(frozen=True)
class DeviceInfo:
    """Static facts about one measured device."""

    key: str  # unique within a session: "gpu0", "cpu-package-0", "dram-0"
    kind: str  # "gpu" | "cpu" | "dram"
    index: int
    name: str
    uuid: str = ""
    driver: str | None = None
    power_limit_w: float | None = None
    energy_method: str = COUNTER
    power_method: str = INSTANT
    simulated: bool = False
    notes: tuple[str, ...] = ()  # figures that degraded to n/a, and why

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "driver": self.driver,
            "power_limit_w": self.power_limit_w,
            "energy_method": self.energy_method,
            "power_method": self.power_method,
            "simulated": self.simulated,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DeviceInfo:
        return cls(
            key=d["key"],
            kind=d["kind"],
            index=int(d["index"]),
            name=d.get("name", ""),
            uuid=d.get("uuid", ""),
            driver=d.get("driver"),
            power_limit_w=d.get("power_limit_w"),
            energy_method=d.get("energy_method", COUNTER),
            power_method=d.get("power_method", INSTANT),
            simulated=bool(d.get("simulated", False)),
            notes=tuple(d.get("notes", ())),
        )


class DeviceReading(NamedTuple):
    """One device at one instant. ``None`` means n/a (not supported or not readable).
    Immutable; a named tuple rather than a frozen dataclass because a recording makes
    dozens a second and a tuple is made in under half the time."""

    key: str
    energy_j: float | None  # cumulative since the source was opened
    power_w: float | None
    energy_method: str
    power_method: str
    util_pct: float | None = None
    mem_used_b: float | None = None
    mem_total_b: float | None = None
    temp_c: float | None = None
    pids: tuple[int, ...] | None = None  # processes on the device, if the source can tell


@dataclass(frozen=True)
class Sample:
    """Every device of every source at one tick of the sampler (immutable snapshot)."""

    seq: int
    t_mono: float  # time.monotonic() at the read
    t_wall: float  # time.time() at the read (unix seconds)
    readings: tuple[DeviceReading, ...] = field(default_factory=tuple)

    def by_key(self) -> dict[str, DeviceReading]:
        return {r.key: r for r in self.readings}


class NativeTicks(Protocol):
    """A source's light ticks in a native thread (:meth:`PowerSource.native_ticks`)."""

    def drain(self) -> list[tuple[float, float, Any]]:
        """(t_mono, t_wall, capture) of each tick since the last drain, oldest first; each
        capture is what ``capture(t_mono, full=False)`` would have returned."""

    def complete(self, captured: Any) -> Any:
        """A light tick's capture made full: what full ticks read besides it, read now."""

    def wake_at(self, t_mono: float) -> None:
        """Write a byte to ``wake_fd`` after the first tick at or after ``t_mono``."""

    def stats(self) -> tuple[int, int]:
        """(ticks taken, ticks dropped because nobody drained them in time)."""

    @property
    def ok(self) -> bool:
        """False once the source can no longer take ticks this way (the sampler's
        thread takes them again)."""

    def close(self) -> None:
        """Stop the thread and wait for it (it ends at once); ticks not drained stay
        drainable."""


def refresh_due(last: float | None, now: float, period_s: float, full: bool) -> bool:
    """Whether figures a source refreshes about every ``period_s`` are due at this read
    (``last``: when they were last read). The sampler's full ticks come about a period
    apart, a little early or late, so on a full tick most of the period is enough; a light
    tick refreshes them only if no full one came for twice the period."""
    return last is None or now - last >= period_s * (0.9 if full else 2.0)


class PowerSource:
    """Base class. Subclasses set :attr:`name` and implement :meth:`devices` and :meth:`read`."""

    name = "source"
    # False: capture(t, full=False) reads nothing (the base class returns no readings), so
    # it may run at any time after the tick, and a native thread may take the tick alone
    reads_on_light_ticks = True

    def devices(self) -> list[DeviceInfo]:
        raise NotImplementedError

    def read(self, t_mono: float) -> list[DeviceReading]:
        """Read every device. ``t_mono`` is the monotonic time of this read; sources that
        integrate power use it as the timestamp of the value they read."""
        raise NotImplementedError

    def capture(self, t_mono: float, full: bool = True) -> Any:
        """The part of :meth:`read` that must happen at the read's moment; :meth:`decode`
        turns what it returns into the readings later (the sampler: about a second's
        ticks at once, in order). A source whose reads cost little to decode just reads.

        ``full`` is False on the sampler's light ticks, the reads between its
        once-a-second full ones (and its first and last reads): a source may then leave
        out what it refreshes only about once a second (utilisation, processes, the run's
        share) and read only its counters and power. A source that says
        ``reads_on_light_ticks = False`` reads nothing on them."""
        if not full and not self.reads_on_light_ticks:
            return []
        return self.read(t_mono)

    def decode(self, captured: Any) -> list[DeviceReading]:
        """The readings of one :meth:`capture` (called once per capture, in order)."""
        return captured

    def native_ticks(self, t0: float, slot_s: float, seed: int, wake_fd: int) -> NativeTicks | None:
        """Light ticks taken by a native thread on the sampler's dithered schedule (slots
        of ``slot_s`` from ``t0``, drawn from ``seed``), or None where this source cannot
        (then the sampler's thread takes every tick). See :class:`NativeTicks`."""
        return None

    def poll_power(self, t_mono: float) -> None:  # noqa: B027 - optional hook
        """Between two :meth:`read` calls: read only the power of the devices that
        integrate it (no energy counter) and add it to their integral, timestamped
        ``t_mono``. The sampler calls it every :data:`wattui.sampler.POWER_POLL_S` on
        sources that say ``needs_fast_poll``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles. Safe to call twice."""


# How far a counter may plausibly run between two reads: max power x (elapsed + slack).
COUNTER_SLACK_S = 1.0
# Plausible peak power of a device, for the counter budget: twice its power limit, at
# least this much (a generous bound: it only has to tell a wrap or a reset from jitter).
MAX_POWER_FLOOR_W = {"gpu": 1500.0, "cpu": 1000.0, "dram": 500.0}


def plausible_max_w(kind: str, power_limit_w: float | None = None) -> float:
    """An upper bound on a device's power, from its limit where known."""
    floor = MAX_POWER_FLOOR_W.get(kind, 1500.0)
    if power_limit_w is not None and math.isfinite(power_limit_w) and power_limit_w > 0:
        return max(2.0 * power_limit_w, floor)
    return 2.0 * floor


# A step back that is not a plausible wrap or reset is jitter (a step forward beyond the
# budget, a spike); if the counter stays off the last accepted value this long, it moved
# itself (restarted at a non-zero value, or jumped): re-baseline at its first off reading.
JITTER_SETTLE_S = 10.0


class EnergyAccumulator:
    """Turns a raw cumulative counter into energy since the first read.

    Every step is judged against how far the counter can have run since the last
    accepted read: a budget of ``max_rate`` raw units per second times the elapsed time,
    plus :data:`COUNTER_SLACK_S`. A step forward within the budget is energy. A step back
    is

    * a **wrap** (``wrap_at`` set, RAPL) when the distance over the top to the new value
      fits the budget: the range is added back;
    * a **reset** (driver reload, GPU reset) when the new value fits the budget *and* is
      below half the last one (a counter that restarted from zero): the new value is
      what came after the reset; what came before it is unknowable and not invented;
    * otherwise **jitter** (an out-of-order or low read).

    Jitter, and a step forward beyond the budget (a **spike**: a garbage read), add
    nothing: the last accepted value stays the baseline, so the next good reading
    continues the sum exactly. A counter that stays off the baseline for
    :data:`JITTER_SETTLE_S` was re-based (a restart at a non-zero value, or an offset):
    it is taken up again from its first off reading (counted as a reset).

    Without ``max_rate`` (or without times) the budget is unbounded: no spikes, and only
    the relative test tells a reset from jitter.
    """

    def __init__(self, wrap_at: float | None = None, max_rate: float | None = None):
        self.wrap_at = wrap_at
        self.max_rate = max_rate
        self.total = 0.0
        self._last: float | None = None
        self._last_t: float | None = None
        # the first reading off the baseline: (raw, t, "jitters" | "spikes")
        self._off: tuple[float, float | None, str] | None = None
        self.resets = 0
        self.wraps = 0
        self.jitters = 0
        self.spikes = 0

    def _budget(self, t: float | None) -> float:
        if self.max_rate is None or t is None or self._last_t is None:
            return math.inf
        return self.max_rate * (max(t - self._last_t, 0.0) + COUNTER_SLACK_S)

    def update(self, raw: float, t: float | None = None) -> float:
        last = self._last
        if last is None:
            self._accept(raw, t)
            return self.total
        delta = raw - last
        last_t = self._last_t
        if delta >= 0 and (  # the common case, first and inline: a step within the budget
            self.max_rate is None
            or t is None
            or last_t is None
            or delta <= self.max_rate * ((t - last_t if t > last_t else 0.0) + COUNTER_SLACK_S)
        ):
            self.total += delta
            self._last, self._last_t, self._off = raw, t, None
            return self.total
        budget = self._budget(t)
        if 0 <= delta <= budget:
            self.total += delta
            self._accept(raw, t)
        elif delta > budget:
            self._off_baseline(raw, t, "spikes")
        elif self.wrap_at is not None and 0 <= self.wrap_at - last + raw <= budget:
            self.total += self.wrap_at - last + raw
            self.wraps += 1
            self._accept(raw, t)
        elif 0 <= raw <= budget and raw < last / 2:
            self.total += raw
            self.resets += 1
            self._accept(raw, t)
        else:
            self._off_baseline(raw, t, "jitters")
        return self.total

    def _accept(self, raw: float, t: float | None) -> None:
        self._last = raw
        self._last_t = t
        self._off = None

    def _off_baseline(self, raw: float, t: float | None, kind: str) -> None:
        off = self._off
        if off is None or off[2] != kind:
            setattr(self, kind, getattr(self, kind) + 1)
            self._off = (raw, t, kind)
            return
        first, t_first, _ = off
        if t is not None and t_first is not None and t - t_first >= JITTER_SETTLE_S:
            # Off the baseline for the settle time: the counter itself moved.
            self.resets += 1
            setattr(self, kind, getattr(self, kind) - 1)
            self.total += max(raw - first, 0.0)
            self._accept(raw, t)


class PowerIntegrator:
    """Trapezoidal integration of power over time, for devices without a counter.

    Repeated identical values are kept (they are real readings); each value is
    timestamped at its read."""

    def __init__(self) -> None:
        self.total = 0.0
        self._last_t: float | None = None
        self._last_p: float | None = None

    def update(self, t: float, power_w: float) -> float:
        if self._last_t is not None and self._last_p is not None and t > self._last_t:
            self.total += 0.5 * (power_w + self._last_p) * (t - self._last_t)
        self._last_t = t
        self._last_p = power_w
        return self.total
