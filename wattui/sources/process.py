"""CPU and memory of the run's process tree (psutil). No energy: CPU energy comes
from RAPL, and this source says so with method ``none``."""

from __future__ import annotations

import time

from .base import DeviceInfo, DeviceReading, PowerSource

NONE = "none"


class ProcessTreeSource(PowerSource):
    """CPU % (sum over the tree, 100 = one core) and RSS of a process and its descendants,
    refreshed at most once a second."""

    name = "process"

    def __init__(self, pid: int, refresh_s: float = 1.0):
        import psutil

        self._psutil = psutil
        self.pid = pid
        self.refresh_s = refresh_s
        self._procs: dict[int, object] = {}
        self._last_t = 0.0
        self._last: tuple[float | None, float | None] = (None, None)
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

    def _refresh(self) -> None:
        ps = self._psutil
        try:
            root = ps.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
            tree = []
        cpu = 0.0
        rss = 0.0
        seen = {}
        for p in tree:
            known = self._procs.get(p.pid, p)
            try:
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
                seen[p.pid] = known
            except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                continue
        self._procs = seen
        self.pids = tuple(seen) or (self.pid,)
        self._last = (cpu if seen else None, rss if seen else None)

    def read(self, t_mono: float) -> list[DeviceReading]:
        now = time.monotonic()
        if now - self._last_t >= self.refresh_s:
            self._last_t = now
            self._refresh()
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
