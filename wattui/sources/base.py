"""The one interface every power source implements, and the records it produces.

A source owns one or more *devices* (a GPU, a CPU package, DRAM). Each call to
:meth:`PowerSource.read` returns one :class:`DeviceReading` per device, with the
device's energy *since the source was opened* (joules) and its live power.
Every figure carries the method that produced it, so nothing reaches a screen
or a file without saying how it was obtained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class DeviceReading:
    """One device at one instant. ``None`` means n/a (not supported or not readable)."""

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


class PowerSource:
    """Base class. Subclasses set :attr:`name` and implement :meth:`devices` and :meth:`read`."""

    name = "source"

    def devices(self) -> list[DeviceInfo]:
        raise NotImplementedError

    def read(self, t_mono: float) -> list[DeviceReading]:
        """Read every device. ``t_mono`` is the monotonic time of this read; sources that
        integrate power use it as the timestamp of the value they read."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles. Safe to call twice."""


class EnergyAccumulator:
    """Turns a raw cumulative counter into energy since the first read, surviving
    resets (a negative delta: keep the sum, restart the baseline) and wraps
    (a counter that rolls over at ``wrap_at``)."""

    def __init__(self, wrap_at: float | None = None):
        self.wrap_at = wrap_at
        self.total = 0.0
        self._last: float | None = None
        self.resets = 0
        self.wraps = 0

    def update(self, raw: float) -> float:
        if self._last is not None:
            delta = raw - self._last
            if delta < 0:
                if self.wrap_at is not None:
                    delta += self.wrap_at
                    self.wraps += 1
                else:
                    # Counter reset (driver reload, GPU reset): what came after the
                    # reset is the new raw value itself.
                    delta = raw
                    self.resets += 1
            self.total += delta
        self._last = raw
        return self.total


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
