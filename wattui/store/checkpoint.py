"""Continuing a live.json checkpoint from the rows written after it.

The recorder writes live.json at most every ``LIVE_EVERY_S`` (see the writer); it holds
the running state of every device's totals and the size of samples.csv it covers. A
reader rebuilds the totals from that state and feeds them the rows appended since, so a
listing is exact to the last flush (about a second) while reading only what changed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from wattui.store import schema
from wattui.store.safeio import MAX_SAMPLES, open_regular
from wattui.store.summary import DeviceStats, SessionStats

__all__ = ["MAX_TAIL", "continue_checkpoint", "Unusable"]

# The most of samples.csv read after a checkpoint. The writer checkpoints again well before
# its file grows this much, so only a checkpoint whose later writes failed meets it.
MAX_TAIL = 4 << 20
_COLUMNS = ("t_wall", "seq", "device", "energy_j", "power_w")
# follow key -> (samples.csv's inode, a byte offset, the totals of the rows before it)
_FOLLOWED: dict = {}
MAX_FOLLOWED = 64
_LOCK = threading.Lock()


class Unusable(Exception):
    """The rows after a checkpoint cannot be found (the message says why)."""


def _header(first: bytes) -> list[int]:
    """Where t_wall, seq, device, energy_j and power_w are in the rows, from the header."""
    if not first.endswith(b"\n"):
        raise Unusable(f"{schema.SAMPLES_LIVE} has no header line")
    names = first.decode("ascii", "replace").strip().split(",")
    try:
        return [names.index(c) for c in _COLUMNS]
    except ValueError:
        raise Unusable(f"{schema.SAMPLES_LIVE}'s header lacks a column it needs") from None


def _parquet_rows(path: Path):
    """The rows of a compacted samples.parquet (a recorder killed between compaction and
    its final meta.json), in file order, as :func:`_rows` gives them."""
    import polars as pl

    with open_regular(path, MAX_SAMPLES) as f:
        df = pl.read_parquet(f, columns=list(_COLUMNS))
    for row in df.iter_rows():
        yield (*row, 0)


def _rows(lines, cols):
    """``(t_wall, seq, device, energy_j, power_w, bytes)`` of each line, up to the first
    that does not parse (``bytes``: the line's length with its newline)."""
    it, iseq, idev, ie, ip = cols
    need = max(cols)
    for line in lines:
        f = line.split(b",")
        try:
            if len(f) <= need or not f[it] or not f[idev]:
                return
            yield (
                float(f[it]),
                int(f[iseq]),
                f[idev].decode(),
                float(f[ie]) if f[ie] else None,
                float(f[ip]) if f[ip] else None,
                len(line) + 1,
            )
        except (ValueError, UnicodeDecodeError):
            return


def _feed(stats: SessionStats, rows) -> int:
    """Add ``rows`` after ``stats.last_seq`` to ``stats``; the bytes of the rows read."""
    seq = stats.last_seq if stats.last_seq is not None else -1
    devices = stats.devices
    n = 0
    for t, s, dev, e, p, size in rows:
        n += size
        if s <= seq:
            continue
        st = devices.get(dev)
        if st is None:
            st = devices[dev] = DeviceStats(dev)
        st.add(t, e, p)
        stats.last_t, stats.last_seq = t, s
    return n


def _copy(stats: SessionStats) -> SessionStats:
    return SessionStats.from_state(stats.to_state(), stats.last_t, stats.last_seq)


def _from_csv(path: Path, live: dict, follow_key) -> SessionStats | None:
    """The checkpoint continued with the rows of samples.csv after it; None when there
    are none. Starts where the last call for ``follow_key`` ended, if that is further."""
    off, seq = live["samples_offset"], live["seq"] if live["seq"] is not None else -1
    with open_regular(path) as f:
        info = os.fstat(f.fileno())
        cols = _header(f.readline(1 << 16))
        f.seek(off - 1)
        if f.read(1) != b"\n":  # the checkpoint's last row ends there, or it is not this file's
            raise Unusable(f"{schema.SAMPLES_LIVE} does not end a line where live.json says")
        with _LOCK:
            got = _FOLLOWED.get(follow_key)
        start, stats = off, None
        if got is not None and got[0] == info.st_ino and off <= got[1] <= info.st_size:
            if got[2].last_seq is not None and got[2].last_seq >= seq:
                start, stats = got[1], _copy(got[2])
        f.seek(start)
        data = f.read(min(MAX_TAIL, max(0, info.st_size - start)))
    end = data.rfind(b"\n")
    if end >= 0:
        if stats is None:
            stats = SessionStats.from_state(live["state"], live["t_wall"], live["seq"])
        rows = list(_rows(data[:end].split(b"\n"), cols))
        # The last sample's rows may not all be there yet (an append read half done, the
        # MAX_TAIL cut): the next call goes on from that sample's first row, not after it.
        k = len(rows)
        while k and rows[k - 1][1] == rows[-1][1]:
            k -= 1
        start += _feed(stats, rows[:k])
        if follow_key is not None:
            with _LOCK:
                _FOLLOWED.pop(follow_key, None)
                _FOLLOWED[follow_key] = (info.st_ino, start, _copy(stats))
                while len(_FOLLOWED) > MAX_FOLLOWED:
                    del _FOLLOWED[next(iter(_FOLLOWED))]
        _feed(stats, rows[k:])
    return stats if stats is not None and stats.last_seq != live["seq"] else None


def continue_checkpoint(session_dir: Path, live: dict, kinds: dict, follow_key=None) -> dict:
    """The totals of a checkpoint (a validated live.json with ``state``) continued with
    every complete row written after it: ``{t_wall, devices, energy_j}``. ``kinds``:
    device key -> kind (meta.json's devices); energy_j is
    :meth:`SessionStats.total_energy`, as the recorder's. The checkpoint as it is when
    nothing came after it.

    ``follow_key`` (a session's folder and start): a later call for the same key goes on
    from where this one ended, so a viewer polling a running session reads each row once.
    Each call reads at most :data:`MAX_TAIL` bytes of rows: past them, the totals end at
    the last complete row within (their ``t_wall`` says when). Raises :class:`Unusable`
    when the rows cannot be found where live.json says, ``OSError`` when the samples
    cannot be read."""
    try:
        stats = _from_csv(session_dir / schema.SAMPLES_LIVE, live, follow_key)
    except FileNotFoundError:  # compacted (just now, or before the recorder was killed)
        if not os.path.lexists(session_dir / schema.SAMPLES_FINAL):
            raise Unusable("no samples file to continue it from") from None
        stats = SessionStats.from_state(live["state"], live["t_wall"], live["seq"])
        _feed(stats, _parquet_rows(session_dir / schema.SAMPLES_FINAL))
        if stats.last_seq == live["seq"]:
            stats = None
    if stats is None:
        return {"t_wall": live["t_wall"], "devices": live["devices"], "energy_j": live.get("energy_j")}
    return {
        "t_wall": stats.last_t,
        "devices": stats.to_dict(),
        "energy_j": stats.total_energy(kinds),
    }
