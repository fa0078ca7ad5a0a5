"""The run's output as a terminal would show it: stdout and stderr kept apart, ``\r``
redraws applied, every line sanitised."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from wattui.sanitize import clean_output
from wattui.store import schema
from wattui.store.safeio import check_regular, open_regular

OUTPUT_FIRST_READ = 256 * 1024  # on opening, show at most this much of output.log's tail
OUTPUT_MAX_READ = 1 << 20  # per poll
OUTPUT_MAX_LINE = 16 * 1024


def clean_line(raw: str) -> str:
    """The one place where a line of the run's output is made safe for the screen (every
    line the output pane shows, finished or live, passes here once): colours kept, every
    other escape and control dropped (:func:`wattui.sanitize.clean_output`)."""
    return clean_output(raw)


_BREAK = re.compile(r"(\r\n|\n|\r)")
STREAMS = ("stdout", "stderr")


class TerminalLine:
    """One stream's current line, as a terminal shows it: text is appended, a ``\r``
    makes the next text replace the line (a progress bar's redraw), a newline ends it."""

    def __init__(self, skip_first: bool = False):
        self.text = ""
        self._cr = False
        self._skip = skip_first  # opened mid-file: the first line is a fragment
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> list[str]:
        """The lines ``data`` finishes (raw text, not yet cleaned)."""
        done: list[str] = []
        for piece in _BREAK.split(self._decoder.decode(data)):
            if piece in ("\n", "\r\n"):
                if not self._skip:
                    done.append(self.text)
                self._skip = False
                self.text, self._cr = "", False
            elif piece == "\r":
                self._cr = True
            elif piece:
                self.text = piece if self._cr else self.text + piece
                self._cr = False
                if len(self.text) > OUTPUT_MAX_LINE:  # a huge line with no end: show it cut
                    done.append(self.text[:OUTPUT_MAX_LINE])
                    self.text = ""
        return done


class OutputTail:
    """Follows output.log from its end (at most the last 256 KB on opening), keeping
    stdout and stderr apart (``output.streams`` says where output.log switches stream).

    ``poll()`` returns the lines finished since the last poll, in the order they were
    finished; ``live`` holds each stream's unfinished line (a progress bar mid-epoch), as
    a terminal would show it at its cursor. A stderr redraw never overwrites a stdout
    line, and lines of the two streams never merge into one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.streams_path = self.path.with_name(schema.OUTPUT_STREAMS)
        self.offset: int | None = None
        self.lines: dict[str, TerminalLine] = {}
        self._marks: list[tuple[int, str]] = []  # (offset, stream), trimmed as we read
        self._marks_off = 0
        self._skip = False

    @property
    def partial(self) -> bytes:  # compatibility: the unfinished stdout line
        line = self.lines.get("stdout")
        return line.text.encode() if line else b""

    @property
    def live(self) -> tuple[str, ...]:
        """Each stream's unfinished line (cleaned), stdout first; empty ones left out."""
        out = []
        for name in STREAMS:
            line = self.lines.get(name)
            if line is not None and line.text and not line._skip:
                text = clean_line(line.text)
                if text.strip():
                    out.append(text)
        return tuple(out)

    def _read_marks(self) -> None:
        try:
            with open_regular(self.streams_path) as f:  # never a FIFO, a device or a symlink
                f.seek(self._marks_off)
                data = f.read()
        except OSError:
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            return
        self._marks_off += cut + 1
        for row in data[: cut + 1].split(b"\n"):
            parts = row.split()
            if len(parts) == 2 and parts[0].isdigit():
                mark = (int(parts[0]), parts[1].decode("ascii", "replace"))
                if not self._marks or mark[0] > self._marks[-1][0]:  # a retried write repeats
                    self._marks.append(mark)

    def _line(self, stream: str) -> TerminalLine:
        line = self.lines.get(stream)
        if line is None:
            line = self.lines[stream] = TerminalLine(skip_first=self._skip)
        return line

    def poll(self) -> list[str]:
        try:
            size = check_regular(self.path).st_size  # never a FIFO, a device or a symlink
        except OSError:
            return []
        if self.offset is None:
            self.offset = max(0, size - OUTPUT_FIRST_READ)
            self._skip = self.offset > 0
        if size < self.offset:  # truncated or replaced
            self.offset, self.lines, self._marks, self._marks_off = 0, {}, [], 0
            self._skip = False
        if size == self.offset:
            return []
        try:
            with open_regular(self.path) as f:
                f.seek(self.offset)
                data = f.read(min(size - self.offset, OUTPUT_MAX_READ))
        except OSError:
            return []
        self._read_marks()
        start, end = self.offset, self.offset + len(data)
        self.offset = end
        marks = self._marks
        # the stream at ``start``: the last switch at or before it (stdout if none)
        i = 0
        while i + 1 < len(marks) and marks[i + 1][0] <= start:
            i += 1
        stream = marks[i][1] if marks and marks[i][0] <= start else "stdout"
        del marks[:i]  # earlier switches are behind us: bounded memory
        done: list[str] = []
        pos = start
        for off, name in marks:
            if off <= pos:
                stream = name
                continue
            if off >= end:
                break
            done += self._line(stream).feed(data[pos - start : off - start])
            pos, stream = off, name
        done += self._line(stream).feed(data[pos - start :])
        self._skip = False  # a stream first heard of later starts with a whole line
        return [clean_line(x) for x in done]
