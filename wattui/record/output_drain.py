"""The run's output, drained as fast as the run writes it, never slowing the run.

    child pipes -> pump threads -> terminal (passthrough)
                                -> OutputLog   (its own thread: output.log, in full)
                                -> IntakeWorker (its own thread: parsing, behind, bounded)

A pump thread only copies bytes: it never parses, never waits on the disk and never
takes the recorder's lock. :class:`OutputLog` appends to ``output.log`` from its own
thread; if the disk refuses writes it keeps up to :data:`OUTPUT_BACKLOG_BYTES` in memory
and after that drops output, counted, with a marker line in the file where the gap is.
:class:`IntakeWorker` splits lines and hands them to the metrics intake
(``feed_line``) behind the run; its queue holds at most :data:`PARSE_BACKLOG_BYTES`, and
when the run prints faster than lines can be parsed the oldest waiting output is shed
(lines counted) rather than the run being made to wait. The same thread polls the
intake's other inputs (report channel, metrics file), so nothing there can block the
recorder's main thread, which must always answer signals. It wakes on data: output put
to it, a change in the directories of those files (:mod:`wattui.record.dirwatch`, Linux),
or new processes in the run's tree (:meth:`IntakeWorker.follow`, called by the recorder
when its once-a-second refresh of the tree finds one: their reports are read and markers
written at once). Without any of these it polls only every :data:`IDLE_POLL_S`, a safety
net (a file changed by another host, which inotify cannot see; wattui's runs write
through this host's kernel, which it does see), or every :data:`LINKED_POLL_S` where a
watched path goes through a symbolic link. Where directories cannot be watched, or a
watch is lost (its directory removed and made again), it polls every :data:`POLL_EVERY_S`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import deque
from pathlib import Path

from wattui.record.dirwatch import open_dir_watch
from wattui.store.schema import OUTPUT_STREAMS
from wattui.store.writer import write_whole

OUTPUT_BACKLOG_BYTES = 32 << 20  # output kept in memory while output.log cannot be written
PARSE_BACKLOG_BYTES = 1 << 20  # output waiting to be parsed; older output is shed beyond it
FINAL_PARSE_BYTES = 64 << 10  # at the end: the newest output still parsed, the rest shed
PARSE_BATCH_LINES = 256  # lines parsed between chances for the pumps to take the GIL
PARSE_CPU_SHARE = 0.2  # of one core, at most, for parsing while the run is going
MAX_LINE_BYTES = 1 << 20  # a line with no newline longer than this is given up on
PIPE_BYTES = 1 << 20  # asked-for pipe capacity (Linux): the run can write ahead of us
POLL_EVERY_S = 0.2  # report channel and metrics file: at most this often
IDLE_POLL_S = 30.0  # ... and, where a change wakes the worker, at least this often
LINKED_POLL_S = 2.0  # ... or this often where a watched path goes through a symbolic link
RETRY_WRITE_S = 0.5
GATHER_S = 0.005  # output.log is written at most this much after the run wrote it

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def widen_pipe(fd: int) -> None:
    """Give a pipe more room (Linux ``F_SETPIPE_SZ``), so the run's writes rarely wait for
    a reader that another thread holds off the GIL for a few ms. Best effort."""
    try:
        import fcntl
    except ImportError:
        return
    for size in (PIPE_BYTES, 256 << 10):  # 1 MB is the unprivileged maximum by default
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
            return
        except OSError:
            continue


STREAM_NAMES = ("stdout", "stderr")  # pump's stream numbers, as output.streams names them


class OutputLog:
    """Appends bytes to ``output.log`` from its own thread. :meth:`write` never blocks.

    Where the bytes switch between the run's stdout and stderr is appended to
    ``output.streams`` (``OFFSET stdout|stderr`` lines) before the bytes themselves, so a
    viewer keeps the two streams' lines apart as a terminal would."""

    def __init__(self, path: str | os.PathLike, backlog_bytes: int = OUTPUT_BACKLOG_BYTES):
        self.path = Path(path)
        self.streams_path = self.path.with_name(OUTPUT_STREAMS)
        self._stream = 0  # the stream at output.log's end (0: stdout, needs no mark)
        self._size: int | None = None  # output.log's size, once opened
        self._pending_streams: list[int] = []  # the stream of each pending chunk
        self.backlog_bytes = backlog_bytes
        self.written_bytes = 0
        self.dropped_bytes = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._gap = 0  # bytes dropped since the last marker
        self._cond = threading.Condition()
        self._closing = False
        self._fd: int | None = None
        self._thread = threading.Thread(target=self._run, name="wattui-output-log", daemon=True)
        self._thread.start()

    def write(self, data: bytes, stream: int = 0) -> None:
        if not data:
            return
        with self._cond:
            if self._pending_bytes + len(data) > self.backlog_bytes:
                self.dropped_bytes += len(data)
                self._gap += len(data)
                return
            if self._gap:
                self._queue(self._marker(self._gap), stream)
                self._gap = 0
            self._queue(data, stream)
            self._cond.notify()

    def _queue(self, data: bytes, stream: int = 0) -> None:
        self._pending.append(data)
        self._pending_streams.append(stream)
        self._pending_bytes += len(data)

    @staticmethod
    def _marker(n: int) -> bytes:
        return (
            f"\n[wattui: {n} bytes of the run's output were not recorded here "
            "(the disk refused writes)]\n"
        ).encode()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                chunks, self._pending = self._pending, []
                streams, self._pending_streams = self._pending_streams, []
                n = self._pending_bytes
                self._pending_bytes = 0
            data = b"".join(chunks)
            if self._append(data, list(zip(streams, map(len, chunks)))):
                self.written_bytes += n
                if not self._closing:  # let a flood gather: fewer writes, fewer GIL hand-offs
                    time.sleep(GATHER_S)
                continue
            with self._cond:  # put it back in front and wait before trying again
                self._pending.insert(0, data)
                self._pending_streams.insert(0, self._stream)  # its switches are marked
                self._pending_bytes += n
                if self._closing:
                    return
                self._cond.wait(RETRY_WRITE_S)

    def _append(self, data: bytes, runs: list[tuple[int, int]] = ()) -> bool:
        """Write all of ``data`` or none of it (a partial write is cut off again).
        ``runs``: (stream, length) of its parts, for output.streams."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            if self._fd is None:
                self._fd = os.open(self.path, flags, 0o600)
                self._size = os.fstat(self._fd).st_size
            marks, pos, stream = [], self._size or 0, self._stream
            for s, n in runs:
                if s != stream and n:
                    marks.append(f"{pos} {STREAM_NAMES[s] if s < len(STREAM_NAMES) else s}\n")
                    stream = s
                pos += n
            if marks:  # first: a reader that sees the bytes must see where they switch
                fd = os.open(self.streams_path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
                try:
                    write_whole(fd, "".join(marks).encode())
                finally:
                    os.close(fd)
                self._stream = stream
            write_whole(self._fd, data)
            self._size = (self._size or 0) + len(data)
        except OSError as e:
            self._failed(e)
            return False
        return True

    def _failed(self, e: OSError) -> None:
        self.write_errors += 1
        self.last_error = e.strerror or str(e)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending (one more try if the disk refuses), then stop. What could
        not be written is counted in :attr:`dropped_bytes` and marked at the file's end."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():  # stuck in a write (hung file system): leave it
            return
        with self._cond:
            pending = self._pending_bytes
            gap = self._gap + pending
            self._pending, self._pending_bytes, self._gap = [], 0, 0
            self._pending_streams = []
        self.dropped_bytes += pending
        if gap:
            self._append(self._marker(gap))  # best effort: the file says where it ends
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class IntakeWorker:
    """Feeds the run's output lines to the metrics intake behind the run, and polls the
    intake's other inputs, in one thread. :meth:`put` never blocks."""

    def __init__(self, intake, *, backlog_bytes: int = PARSE_BACKLOG_BYTES, on_error=None):
        self.intake = intake
        self.backlog_bytes = backlog_bytes
        self.on_error = on_error or (lambda msg: None)
        self.parse = getattr(intake, "parser", True) is not None  # None: output not parsed
        self.shed_lines = 0
        self.fed_lines = 0
        self._queue: deque[tuple[int, bytes, float]] = deque()
        self._queued_bytes = 0
        self._cut: set[int] = set()  # streams with output shed since their last parse
        self._midline: set[int] = set()  # ... whose shed output ended inside a line
        self._partial: dict[int, bytes] = {}
        self._to_follow: set[int] = set()
        self._followed: set[int] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._abandon = False  # the end's time is up: stop parsing between batches
        self._errors = 0
        self._rest = 1.0 / PARSE_CPU_SHARE - 1.0  # seconds of rest per second of parsing
        self._poll_due = True  # a watched file changed (or new pids to follow) since the last poll
        dirs = getattr(intake, "watch_dirs", None)
        self._watch = open_dir_watch(dirs(), self._changed) if callable(dirs) else None
        self._thread = threading.Thread(target=self._run, name="wattui-intake", daemon=True)
        self._thread.start()

    @property
    def poll_every_s(self) -> float:
        """How often the inputs are polled without a wake-up: rarely where every directory
        is watched, every 2 s where a path goes through a symbolic link (it may be pointed
        out of the watch), 5 times a second where some directory is not (or no longer)
        watched."""
        w = self._watch
        if w is None or not w.complete:
            return POLL_EVERY_S
        return LINKED_POLL_S if w.linked else IDLE_POLL_S

    def _changed(self) -> None:
        with self._cond:
            self._poll_due = True
            self._cond.notify()

    def follow(self, pids) -> None:
        """Also follow these processes' report() events (taken up at the next poll, in
        the worker's thread: the intake is only ever driven from one thread)."""
        with self._cond:
            new = set(pids) - self._followed
            if new - self._to_follow:
                self._to_follow |= new
                self._poll_due = True
                self._cond.notify()

    def put(self, stream: int, data: bytes, t_wall: float) -> None:
        if not self.parse or not data:
            return
        with self._cond:
            self._queue.append((stream, data, t_wall))
            self._queued_bytes += len(data)
            self._shed_to(self.backlog_bytes)
            self._cond.notify()

    def _shed_to(self, limit: int) -> None:
        """Drop the oldest waiting output until at most ``limit`` bytes wait (lock held)."""
        while self._queued_bytes > limit and self._queue:
            stream, data, _ = self._queue.popleft()
            self._queued_bytes -= len(data)
            self.shed_lines += len(_LINE_BREAK.findall(data))
            self._cut.add(stream)  # the partial line before it ended in it: void
            if data.endswith((b"\n", b"\r")):
                self._midline.discard(stream)
            else:  # the next chunk starts inside a line that began in shed output
                self._midline.add(stream)

    def _run(self) -> None:
        last_poll = -float("inf")
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    wait = POLL_EVERY_S if self._poll_due else self.poll_every_s
                    self._cond.wait(max(0.0, last_poll + wait - time.monotonic()))
                due = last_poll + (POLL_EVERY_S if self._poll_due else self.poll_every_s)
                item = self._queue.popleft() if self._queue else None
                cut = midline = False
                if item is not None:
                    self._queued_bytes -= len(item[1])
                    cut, midline = item[0] in self._cut, item[0] in self._midline
                    self._cut.discard(item[0])
                    self._midline.discard(item[0])
                closing = self._closing
            if item is not None and self._feed(*item, cut, midline):
                with self._cond:
                    self._midline.add(item[0])
            if time.monotonic() >= due:
                with self._cond:
                    new, self._to_follow = self._to_follow - self._followed, set()
                    self._followed |= new
                    self._poll_due = False
                for pid in sorted(new):
                    self._call(self.intake.follow_pid, pid)
                self._call(self.intake.poll, time.time())
                last_poll = time.monotonic()
            if item is None and closing:
                if self._watch is not None:
                    self._watch.close()
                return

    def _feed(self, stream: int, data: bytes, t_wall: float, cut: bool, midline: bool) -> bool:
        """Parse one chunk. ``cut``: output was shed before it (the partial line is void);
        ``midline``: it starts inside a shed line. True if it is all inside that line."""
        if cut:
            self._partial.pop(stream, None)
        if midline:
            m = _LINE_BREAK.search(data)
            if m is None:
                return True
            with self._cond:
                self.shed_lines += 1
            data = data[m.end() :]
        lines = _LINE_BREAK.split(self._partial.get(stream, b"") + data)
        partial = lines.pop()
        self._partial[stream] = partial if len(partial) <= MAX_LINE_BYTES else b""
        feed = self.intake.feed_line
        for i in range(0, len(lines), PARSE_BATCH_LINES):
            if self._abandon:  # out of time at the end: the rest is shed
                with self._cond:
                    self.shed_lines += len(lines) - i
                break
            batch = lines[i : i + PARSE_BATCH_LINES]
            t0 = time.perf_counter()
            for line in batch:
                self._call(feed, line, t_wall)
            self.fed_lines += len(batch)
            # At most PARSE_CPU_SHARE of a core while the run is going: the run's own
            # CPU comes first (and the pumps get the GIL back at once).
            busy = time.perf_counter() - t0
            time.sleep(0 if self._closing else min(busy * self._rest, 1.0))
        return False

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - metrics must never end a recording
            self._errors += 1
            if self._errors == 1:
                self.on_error(f"metrics intake error: {e}")

    def finish(self, drain_s: float = 3.0) -> bool:
        """The run has ended: parse the newest waiting output (at most
        :data:`FINAL_PARSE_BYTES`; older waiting output is shed), feed the last partial
        lines, poll once more and close the intake, all within about ``drain_s``. Returns
        False if the intake did not finish in time (it is then left behind)."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            self._shed_to(FINAL_PARSE_BYTES)
            self._closing = True
            self._cond.notify_all()
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():
            with self._cond:
                self._shed_to(0)
                self._abandon = True
            self._thread.join(1.0)
        if self._thread.is_alive():
            self.on_error("metrics intake did not finish in time; its last inputs are missing")
            return False
        done = threading.Event()

        def close() -> None:
            for _, partial in sorted(self._partial.items()):
                if partial:
                    self._call(self.intake.feed_line, partial, time.time())
            self._partial.clear()
            self._call(self.intake.close)
            done.set()

        threading.Thread(target=close, name="wattui-intake-close", daemon=True).start()
        if not done.wait(max(deadline - time.monotonic(), 0.0) + 2.0):
            self.on_error("metrics intake did not close in time; its last inputs are missing")
            return False
        return True


def pump(pipe, terminal, log: OutputLog, worker: IntakeWorker | None, stream: int) -> None:
    """Copy one of the run's pipes: to the terminal (``None``: not shown), output.log and
    the intake worker. Runs until the pipe closes."""
    out = getattr(terminal, "buffer", terminal) if terminal is not None else None
    read = pipe.read1
    while True:
        try:
            chunk = read(65536)
        except (OSError, ValueError):  # closed under us
            break
        if not chunk:
            break
        if out is not None:
            try:
                out.write(chunk)
                out.flush()
            except (OSError, ValueError):
                out = None  # the terminal went away (SSH dropped): keep recording
        log.write(chunk, stream)
        if worker is not None:
            worker.put(stream, chunk, time.time())
    with contextlib.suppress(OSError):
        pipe.close()
