"""What the recorder shows the rest of wattui while it records: a typed, read-only state
(:class:`RecorderState`, a frozen snapshot) and typed events for the sinks that subscribe
(:meth:`wattui.record.recorder.Recorder.subscribe`).

    Started        the session exists (status "starting"): sinks set up (an endpoint, a tracker run)
    StatusChanged  the status moved on ("running" once the first sample is taken)
    Sampled        a sample was added (the session's energy then)
    Logged         a row the intake or an exporter stored (metric, epoch_end, warning)
    Finished       the session is closed: its final meta (None if nothing was written)

A sink is any callable taking one event; it is called on the recorder's threads (sampler,
output pumps, main), must return quickly and must not raise (what it raises is dropped:
a sink never ends a recording). It may call ``Recorder.state()``, but not
``Recorder.live_metrics()``: a :class:`Logged` metric row comes while the intake holds the
lock that ``live_metrics`` takes (an exporter reads it from its own thread, as a scrape does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DeviceTotals",
    "LiveMetrics",
    "RecorderState",
    "RecorderView",
    "RecorderEvent",
    "RecorderSink",
    "Started",
    "StatusChanged",
    "Sampled",
    "Logged",
    "Finished",
]

@dataclass(frozen=True)
class DeviceTotals:
    """One measured device and its running totals since the recording started."""

    key: str
    kind: str  # gpu | cpu | dram | process ...
    name: str
    uuid: str
    energy_method: str
    simulated: bool
    energy_j: float | None  # since the recording started
    power_w: float | None  # at the last sample


@dataclass(frozen=True)
class LiveMetrics:
    """The run's figures so far, as the metrics intake computed them."""

    accuracy: float | None = None  # a fraction (the intake has decided percent or fraction)
    sam: float | None = None
    projected_energy_j: float | None = None


@dataclass(frozen=True)
class RecorderState:
    session_id: str
    status: str  # starting | running | finished | failed | interrupted
    host: str
    name: str | None
    group: str | None
    command: tuple[str, ...]
    simulated: bool
    devices: tuple[DeviceTotals, ...]
    energy_j: float | None  # all measured devices, since the recording started
    started_at: float | None  # wall time of the first sample
    sam_alpha: float
    sam_beta: float
    sam_unit: str
    accuracy_key: str | None


@dataclass(frozen=True)
class Started:
    state: RecorderState


@dataclass(frozen=True)
class StatusChanged:
    status: str
    state: RecorderState


@dataclass(frozen=True)
class Sampled:
    t_wall: float
    energy_j: float | None


@dataclass(frozen=True)
class Logged:
    row: Mapping  # as stored in events.parquet (kind, t_wall, ...)


@dataclass(frozen=True)
class Finished:
    status: str
    meta: Mapping | None  # the session's final meta.json; None if no session was written


RecorderEvent = Started | StatusChanged | Sampled | Logged | Finished
RecorderSink = Callable[[RecorderEvent], None]


class RecorderView(Protocol):
    """The recorder as an exporter reads it: state and figures on demand, a warning stored
    in the session."""

    def state(self) -> RecorderState: ...

    def live_metrics(self) -> LiveMetrics: ...

    def add_event(self, event: dict) -> None: ...
