"""Continuing a live.json checkpoint from the rows written after it.

The recorder writes live.json at most every ``LIVE_EVERY_S`` (see the writer); it holds
the running state of every device's totals and the size of samples.csv it covers. A
reader rebuilds the totals from that state and feeds them the rows appended since, so a
listing is exact to the last flush (about a second) while reading only what changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from wattui.model.kinds import ENERGY_KINDS
from wattui.store import schema
from wattui.store.safeio import MAX_SAMPLES, open_regular, read_bytes
from wattui.store.summary import DeviceStats, SessionStats

__all__ = ["MAX_TAIL", "continue_checkpoint", "Unusable"]

# The most of samples.csv read after a checkpoint. The writer checkpoints again well before
# its file grows this much, so only a checkpoint whose later writes failed meets it.
MAX_TAIL = 4 << 20
_COLUMNS = ("t_wall", "seq", "device", "energy_j", "power_w")


class Unusable(Exception):
    """The rows after a checkpoint cannot be found (the message says why)."""


def _header(path: Path) -> list[int]:
    """Where t_wall, seq, device, energy_j and power_w are in a samples.csv's rows."""
    with open_regular(path) as f:
        first = f.readline(1 << 16)
    if not first.endswith(b"\n"):
        raise Unusable(f"{schema.SAMPLES_LIVE} has no header line")
    names = first.decode("ascii", "replace").strip().split(",")
    try:
        return [names.index(c) for c in _COLUMNS]
    except ValueError:
        raise Unusable(f"{schema.SAMPLES_LIVE}'s header lacks a column it needs") from None


def _csv_rows(path: Path, offset: int):  # reads at once: FileNotFoundError here
    """The complete lines of samples.csv from byte ``offset`` (at most :data:`MAX_TAIL` of
    them) as ``(t_wall, seq, device, energy_j, power_w)``, up to the first that does not
    parse. A last line without its newline (being written, or torn) is not read."""
    cols = _header(path)
    # one byte before the offset: the newline that ends the checkpoint's last row
    data = read_bytes(path, MAX_SAMPLES, offset=offset - 1, limit=MAX_TAIL + 1)
    if not data.startswith(b"\n"):
        raise Unusable(f"{schema.SAMPLES_LIVE} does not end a line where live.json says")
    end = data.rfind(b"\n")
    return _parse(data[1:end].split(b"\n") if end > 0 else (), cols)


def _parse(lines, cols):
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
            )
        except (ValueError, UnicodeDecodeError):
            return


def _parquet_rows(path: Path, seq: int):
    """The rows of a compacted samples.parquet after ``seq`` (a recorder killed between
    compaction and its final meta.json): in file order, as :func:`_csv_rows` gives them."""
    import polars as pl

    with open_regular(path, MAX_SAMPLES) as f:
        df = pl.read_parquet(f, columns=list(_COLUMNS))
    yield from df.filter(pl.col("seq") > seq).iter_rows()


def continue_checkpoint(session_dir: Path, live: dict, kinds: dict) -> dict:
    """The totals of a checkpoint (a validated live.json with ``state``) continued with
    every complete row written after it: ``{t_wall, devices, energy_j}``. ``kinds``:
    device key -> kind (meta.json's devices); energy_j adds the :data:`ENERGY_KINDS`, as
    the recorder does. The checkpoint as it is when nothing came after it.

    Past :data:`MAX_TAIL` bytes of rows, the totals end at the last complete row within
    it (their ``t_wall`` says when). Raises :class:`Unusable` when the rows cannot be
    found where live.json says, ``OSError`` when the samples cannot be read."""
    seq = live["seq"] if live["seq"] is not None else -1
    try:
        rows = _csv_rows(session_dir / schema.SAMPLES_LIVE, live["samples_offset"])
    except FileNotFoundError:  # compacted (just now, or before the recorder was killed)
        if not os.path.lexists(session_dir / schema.SAMPLES_FINAL):
            raise Unusable("no samples file to continue it from") from None
        rows = _parquet_rows(session_dir / schema.SAMPLES_FINAL, seq)
    stats = None
    for t, s, dev, e, p in rows:
        if s <= seq:
            continue
        if stats is None:
            stats = SessionStats.from_state(live["state"], live["t_wall"], live["seq"])
        st = stats.devices.get(dev)
        if st is None:
            st = stats.devices[dev] = DeviceStats(dev)
        st.add(t, e, p)
        stats.last_t, stats.last_seq = t, s
    if stats is None:
        return {"t_wall": live["t_wall"], "devices": live["devices"], "energy_j": live.get("energy_j")}
    energies = [
        e
        for k, st in stats.devices.items()
        if kinds.get(k) in ENERGY_KINDS and (e := st.energy_j) is not None
    ]
    return {
        "t_wall": stats.last_t,
        "devices": stats.to_dict(),
        "energy_j": sum(energies) if energies else None,
    }
