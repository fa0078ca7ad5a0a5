"""The run's share of a GPU that several processes use: an estimate, never a measurement.

NVML measures whole GPUs. Per process it only says how busy each one kept the SMs
(``nvmlDeviceGetProcessUtilization``). Following Kepler's split, each tick's device
energy ``dE`` over ``dt`` is cut in two:

* idle: ``min(dE, idle_w * dt)``, shared evenly among the processes on the GPU
  (``idle_w`` is the lowest power seen on the GPU so far, or a measured baseline);
* the rest (dynamic), split by each process's share of SM utilisation; when no process
  shows any SM use, evenly like the idle part.

The run gets the parts of the processes that belong to it (its process tree). No process
on the GPU at all: the energy is nobody's and the run gets none of it. Processes that
cannot be listed (no permission): the share is unknown (``None``), never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping


class RunShare:
    """Cumulative estimated energy of one run's processes on one GPU."""

    def __init__(self, idle_w: float | None = None):
        self.energy_j = 0.0
        self.fraction: float | None = None  # the run's share of the last tick's energy
        self.idle_w = idle_w
        self._fixed_idle = idle_w is not None
        self._last: tuple[float, float] | None = None  # (t, device energy)

    def update(
        self,
        t: float,
        device_energy_j: float | None,
        power_w: float | None,
        procs: Mapping[int, float | None] | None,
        run_pids: set[int],
        parts: tuple[float, float] | None | bool = False,
    ) -> float | None:
        """Add one tick. ``procs`` maps every process on the GPU to its SM utilisation %
        (``None`` where NVML gave none), or is ``None`` when the list is unreadable.
        ``parts``: :func:`split_parts` of ``procs`` and ``run_pids`` where the caller keeps
        it (they change about once a second). Returns the cumulative estimate, or ``None``
        while it cannot be told."""
        if power_w is not None and power_w >= 0 and not self._fixed_idle:
            self.idle_w = power_w if self.idle_w is None else min(self.idle_w, power_w)
        if device_energy_j is None:
            return self.energy_j if procs is not None else None
        last, self._last = self._last, (t, device_energy_j)
        if procs is None:
            self.fraction = None
            return None
        if last is None:
            return self.energy_j
        dt = t - last[0]
        de = device_energy_j - last[1]
        if dt <= 0 or de < 0:
            return self.energy_j
        if parts is False:
            parts = split_parts(procs, run_pids)
        self.fraction = fraction_of(de, dt, self.idle_w, parts)
        self.energy_j += de * self.fraction
        return self.energy_j


def split_fraction(
    de: float,
    dt: float,
    idle_w: float | None,
    procs: Mapping[int, float | None],
    run_pids: set[int],
) -> float:
    """The run's fraction of ``de`` joules spent over ``dt`` seconds (see the module)."""
    return fraction_of(de, dt, idle_w, split_parts(procs, run_pids))


def split_parts(procs: Mapping[int, float | None], run_pids: set[int]) -> tuple[float, float] | None:
    """What the split takes from the processes: (the run's even share, its share of the SM
    utilisation, or the even share when nobody used the SMs); None when the run has no
    process on the GPU or nobody is on it (the run's fraction is then 0)."""
    on = list(procs)
    mine = [p for p in on if p in run_pids]
    if not on or not mine:
        return None
    even = len(mine) / len(on)
    sm_all = sum(procs[p] or 0.0 for p in on)
    dynamic = (sum(procs[p] or 0.0 for p in mine) / sm_all) if sm_all > 0 else even
    return even, dynamic


def fraction_of(de: float, dt: float, idle_w: float | None, parts: tuple[float, float] | None) -> float:
    """:func:`split_fraction` from :func:`split_parts`."""
    if parts is None:
        return 0.0
    even, dynamic = parts
    if de <= 0:
        return even
    idle = min(de, max(0.0, idle_w or 0.0) * dt)
    return (idle * even + (de - idle) * dynamic) / de
