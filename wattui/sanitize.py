"""The one sanitiser for strings that come from a run or a user and are shown or exported.

A training run's output, ``wattui.report(model=...)``, metric names, ``--name``, a
rename, a host name or a directory name can hold terminal escape sequences: an OSC that
retitles the terminal or writes the clipboard, ``ESC c`` (reset), C1 controls (``U+009B``
is a CSI on some terminals), or bidirectional overrides that make text read otherwise
than it is. None of that may reach a terminal, a web page or an exported file.

- :func:`clean_text` for a single-line field (names, tags, ids, metric names, hosts,
  messages): every escape sequence is removed whole, line breaks and tabs become spaces,
  every other control or bidi/format character is dropped.
- :func:`clean_output` for a line of the run's output: the same, except that colours and
  text styles (SGR, ``ESC [ ... m``) are kept, and a ``\\r`` redraw keeps what a terminal
  would show last.
- :func:`control_chars` says what a user-typed string holds that would be dropped, so
  input (``--name``, rename) can be refused with a reason instead.

Standard library only; never imports Textual.
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "clean_output", "control_chars", "strip_sgr"]

# ECMA-48: string controls (OSC, DCS, SOS, PM, APC) run to ST (ESC \ or U+009C) or BEL;
# an unterminated one swallows the rest of the line.
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])(?:[^\x07\x1b\x9c]|\x1b(?!\\))*(?:\x07|\x1b\\|\x9c|$)"
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*(?:[@-~]|$)"
_ESC = r"\x1b[ -/]*(?:[0-~]|$)"
_SEQ = re.compile(f"{_STRING}|{_CSI}|{_ESC}")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_OUT_SEQ = re.compile(f"({_SGR.pattern})|{_STRING}|{_CSI}|{_ESC}")

# Bidirectional and other invisible format controls (Trojan Source, CVE-2021-42574)
_FORMAT = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
_SPACE = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")
_CONTROL = re.compile(f"[\x00-\x08\x0e-\x1b\x7f-\x9f{_FORMAT}]")
_OUT_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_FORMAT}]")


def clean_text(value, max_len: int | None = None) -> str:
    """``value`` as one line of plain text: no escape sequence, control or bidi/format
    character survives; line breaks and tabs become spaces. ``None`` gives ``""``."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if s.isprintable() and s.isascii():  # the common case, fast
        out = s
    else:
        out = _CONTROL.sub("", _SPACE.sub(" ", _SEQ.sub("", s)))
    if max_len is not None and len(out) > max_len:
        out = out[: max(0, max_len - 1)] + "…"
    return out


def clean_output(line: str) -> str:
    """One line of a run's output for the output pane: SGR colours kept, every other
    escape sequence and control dropped. ``\\r`` redraws (progress bars) keep the last
    non-empty segment, as a terminal would show it."""
    if "\r" in line:
        parts = [p for p in line.split("\r") if p]
        line = parts[-1] if parts else ""
    if line.isprintable() and line.isascii():
        return line
    out = []
    pos = 0
    for m in _OUT_SEQ.finditer(line):
        out.append(_OUT_CONTROL.sub("", line[pos : m.start()]))
        if m.group(1):
            out.append(m.group(1))  # SGR: kept as it is
        pos = m.end()
    out.append(_OUT_CONTROL.sub("", line[pos:]))
    return "".join(out)


def strip_sgr(line: str) -> str:
    """``line`` without its SGR sequences (for searching or measuring a cleaned line)."""
    return _SGR.sub("", line)


def control_chars(value: str) -> list[str]:
    """The characters of ``value`` that :func:`clean_text` would drop or change, as
    ``U+XXXX`` (for a one-line refusal of typed input)."""
    seen = []
    for c in value:
        if (_CONTROL.match(c) or _SPACE.match(c)) and f"U+{ord(c):04X}" not in seen:
            seen.append(f"U+{ord(c):04X}")
    return seen
