"""CPU and memory of the run's process tree. No energy: CPU energy comes from RAPL,
and this source says so with method ``none``.

On Linux the tree is followed incrementally: each refresh reads, for each process
already known, its ``/proc/PID/stat`` (CPU time, RSS, start time) and the children of its
main thread (``/proc/PID/task/PID/children``), never every process on the machine; these
files stay open between refreshes (:class:`_OpenFiles`). A
thorough scan from the root runs only at the start and every :data:`RESCAN_S`: it reads
the children of every thread of each process in the tree (what the main thread's file
misses: a child forked by another thread) and drops processes that left the tree. It
finds what psutil's walk of every process on the machine finds (the children by parent
PID), at the cost of the tree, not of the machine. Elsewhere psutil does all of it.
"""

from __future__ import annotations

import functools
import os
import time

from wattui.sources.base import DeviceInfo, DeviceReading, PowerSource, refresh_due

NONE = "none"
RESCAN_S = 30.0  # a thorough scan of the tree (every thread's children) at most this often


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process, every thread, also those that ended (not its children):
    Linux's per-process CPU clock (ns), else /proc/PID/stat (10 ms ticks); None if neither
    can be read (the process is gone). For benches and the GPU check."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, SCHED)
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _kernel_lists_children() -> bool:
    try:
        return os.path.exists(f"/proc/self/task/{os.getpid()}/children")
    except OSError:
        return False


def _read_small(path: str) -> bytes:
    """A small /proc file's bytes: open, read, close (no file object: open() adds an
    fstat and an ioctl per file, and this runs every second for every process)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


KEEP_OPEN = 512  # /proc files kept open between refreshes (two per process)


class _OpenFiles:
    """The tree's /proc files, kept open between refreshes and read again with ``pread``:
    an open and a close (a path walk through /proc) less per file each second, a third of
    the cost. A file of a process that was reaped reads ESRCH: it is closed, and a PID
    used again is a new open. :meth:`keep` closes the files of processes that left."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._closed = False  # a read after close() (a sampler thread that outlived its
        # join) opens nothing to keep

    def read(self, path: str) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            if self._closed or len(self._fds) >= KEEP_OPEN:
                return _read_small(path)
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.pread(fd, 4096, 4096 * len(chunks)):
                chunks.append(chunk)
                if len(chunk) < 4096:
                    break
            return b"".join(chunks)
        except OSError:
            self._close(path)
            raise

    def keep(self, pids) -> None:
        """Close the files of every process but ``pids``."""
        prefixes = {f"/proc/{p}/" for p in pids}
        for path in [p for p in self._fds if p[: p.index("/", 6) + 1] not in prefixes]:
            self._close(path)

    def _close(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        self._closed = True
        for path in list(self._fds):
            self._close(path)


def _children(pid: int, files: _OpenFiles) -> list[int]:
    """Children forked by ``pid``'s main thread (none once it is gone)."""
    try:
        return [int(c) for c in files.read(f"/proc/{pid}/task/{pid}/children").split()]
    except (OSError, ValueError):
        return []


def _children_of_every_thread(pid: int) -> list[int]:
    """Children forked by any thread of ``pid``."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            out.extend(int(c) for c in _read_small(f"/proc/{pid}/task/{tid}/children").split())
        except (OSError, ValueError):
            continue
    return out


def _stat(pid: int, files: _OpenFiles) -> tuple[int, float, float] | None:
    """(start time in ticks, CPU seconds, RSS bytes) of a live process, from one read of
    ``/proc/PID/stat``; None if it is gone or a zombie."""
    try:
        raw = files.read(f"/proc/{pid}/stat")
        fields = raw[raw.rindex(b")") + 2 :].split()
        if fields[0] == b"Z":
            return None
        cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
        return int(fields[19]), cpu, int(fields[21]) * _PAGE  # starttime, rss pages
    except (OSError, ValueError, IndexError):
        return None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ProcessTreeSource(PowerSource):
    """CPU % (sum over the tree, 100 = one core) and RSS of a process and its descendants,
    refreshed at most once a second."""

    name = "process"
    reads_on_light_ticks = False  # capture(t, full=False) is []

    def __init__(self, pid: int, refresh_s: float = 1.0, rescan_s: float = RESCAN_S):
        import psutil

        self._psutil = psutil
        self.pid = pid
        self.refresh_s = refresh_s
        self.rescan_s = rescan_s
        self._procs: dict = {}  # pid -> (start, CPU s, when) on Linux, else psutil.Process
        self._last_t = 0.0
        self._last_scan = -float("inf")
        self._last: tuple[float | None, float | None] = (None, None)
        self.full_scans = 0  # thorough scans (every thread's children; elsewhere psutil's)
        self._incremental = _kernel_lists_children()  # else: psutil, a full scan each refresh
        self._files = _OpenFiles()
        self.pids: tuple[int, ...] = (pid,)
        self._reading: DeviceReading | None = None

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
        """The tree's pids: the known ones and their main threads' children, or (at the
        start and every ``rescan_s``) the root's descendants through every thread."""
        children = functools.partial(_children, files=self._files)
        pids = list(self._procs) or [self.pid]
        if now - self._last_scan >= self.rescan_s:
            self._last_scan = now
            self.full_scans += 1
            children = _children_of_every_thread
            pids = [self.pid]
        seen = set(pids)
        for pid in pids:  # grows while iterated: children of new children are followed too
            for c in children(pid):
                if c not in seen:
                    seen.add(c)
                    pids.append(c)
        return pids

    def _refresh(self, now: float) -> None:
        if not self._incremental:
            self._refresh_psutil(now)
            return
        cpu = 0.0
        rss = 0.0
        seen: dict[int, tuple[int, float, float]] = {}
        files = self._files
        for pid in self._tree(now):
            st = _stat(pid, files)
            if st is None:
                continue
            start, cpu_s, mem = st
            last = self._procs.get(pid)
            if last is not None and last[0] == start and now > last[2]:  # same process
                cpu += 100.0 * max(cpu_s - last[1], 0.0) / (now - last[2])
            seen[pid] = (start, cpu_s, now)
            rss += mem
        self._procs = seen
        files.keep(seen)
        self.pids = tuple(seen) or (self.pid,)
        self._last = (cpu if seen else None, rss if seen else None)

    def close(self) -> None:
        self._files.close()

    def _refresh_psutil(self, now: float) -> None:
        ps = self._psutil
        cpu = 0.0
        rss = 0.0
        seen = {}
        for pid in self._full_scan():
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

    def capture(self, t_mono: float, full: bool = True) -> list[DeviceReading]:
        """The tree's reading on full ticks (the sampler's come about once a second; a
        little early is still a refresh); none on light ticks, whose rows would only
        repeat it."""
        if not full:
            return []
        now = time.monotonic()
        return self._reading_at(now, refresh_due(self._last_t, now, self.refresh_s, True))

    def read(self, t_mono: float) -> list[DeviceReading]:
        now = time.monotonic()
        return self._reading_at(now, now - self._last_t >= self.refresh_s)

    def _reading_at(self, now: float, due: bool) -> list[DeviceReading]:
        if due or self._reading is None:
            self._last_t = now
            self._refresh(now)
            cpu, rss = self._last
            # the same reading until the next refresh: nothing in it changes in between
            self._reading = DeviceReading(
                key="proc",
                energy_j=None,
                power_w=None,
                energy_method=NONE,
                power_method=NONE,
                util_pct=cpu,
                mem_used_b=rss,
                pids=self.pids,
            )
        return [self._reading]
