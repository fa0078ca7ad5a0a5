"""CPU and memory of the run's process tree (psutil). No energy: CPU energy comes
from RAPL, and this source says so with method ``none``.

The tree is followed incrementally: each refresh reads the children of the processes
already known (Linux ``/proc/PID/task/PID/children``: a few small reads), not every
process on the machine. A full scan (psutil walks all processes) runs only at the
start, every :data:`RESCAN_S`, and wherever the children files cannot be read; it finds
what the children files miss (a child forked by a thread other than a process's main
one) and drops processes that left the tree.
"""

from __future__ import annotations

import os
import time

from .base import DeviceInfo, DeviceReading, PowerSource

NONE = "none"
RESCAN_S = 30.0  # a full scan of the machine's processes at most this often


def _kernel_lists_children() -> bool:
    try:
        return os.path.exists(f"/proc/self/task/{os.getpid()}/children")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Children forked by ``pid``'s main thread (none once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return []


class ProcessTreeSource(PowerSource):
    """CPU % (sum over the tree, 100 = one core) and RSS of a process and its descendants,
    refreshed at most once a second."""

    name = "process"

    def __init__(self, pid: int, refresh_s: float = 1.0, rescan_s: float = RESCAN_S):
        import psutil

        self._psutil = psutil
        self.pid = pid
        self.refresh_s = refresh_s
        self.rescan_s = rescan_s
        self._procs: dict[int, object] = {}
        self._last_t = 0.0
        self._last_scan = -float("inf")
        self._last: tuple[float | None, float | None] = (None, None)
        self.full_scans = 0  # how many times every process on the machine was read
        self._incremental = _kernel_lists_children()  # else: a full scan every refresh
        self.pids: tuple[int, ...] = (pid,)

    def devices(self) -> list[DeviceInfo]:
        return [
            DeviceInfo(
                key="proc",
                kind="proc",
                index=0,
                name=f"process tree of {self.pid}",
                energy_method=NONE,
                power_method=NONE,
            )
        ]

    def _full_scan(self) -> list[int]:
        ps = self._psutil
        self.full_scans += 1
        try:
            root = ps.Process(self.pid)
            return [self.pid, *(c.pid for c in root.children(recursive=True))]
        except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
            return []

    def _tree(self, now: float) -> list[int]:
        """The tree's pids: the known ones and their children, or a full scan."""
        if not self._incremental or now - self._last_scan >= self.rescan_s:
            self._last_scan = now
            return self._full_scan()
        pids = list(self._procs) or [self.pid]
        seen = set(pids)
        for pid in pids:  # grows while iterated: children of new children are followed too
            for c in _children(pid):
                if c not in seen:
                    seen.add(c)
                    pids.append(c)
        return pids

    def _refresh(self, now: float) -> None:
        ps = self._psutil
        cpu = 0.0
        rss = 0.0
        seen = {}
        for pid in self._tree(now):
            known = self._procs.get(pid)
            try:
                if known is None:
                    known = ps.Process(pid)
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
                seen[pid] = known
            except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                continue
        self._procs = seen
        self.pids = tuple(seen) or (self.pid,)
        self._last = (cpu if seen else None, rss if seen else None)

    def read(self, t_mono: float) -> list[DeviceReading]:
        now = time.monotonic()
        if now - self._last_t >= self.refresh_s:
            self._last_t = now
            self._refresh(now)
        cpu, rss = self._last
        return [
            DeviceReading(
                key="proc",
                energy_j=None,
                power_w=None,
                energy_method=NONE,
                power_method=NONE,
                util_pct=cpu,
                mem_used_b=rss,
                pids=self.pids,
            )
        ]
