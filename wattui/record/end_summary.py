"""What the recorder prints when a recording ends: the summary of the session, or what the
disk kept of it when it refused the end."""

from __future__ import annotations

import time

from wattui.format import fmt_energy_precise as format_energy
from wattui.model.kinds import ENERGY_KINDS
from wattui.store.writer import SessionWriter

__all__ = ["format_summary", "format_unsaved"]


def format_unsaved(w: SessionWriter, status: str) -> str:
    """The end of a session that the disk refused to record, as its files now read."""
    live = w.saved_live or {}
    t = live.get("t_wall")
    upto = time.strftime("%H:%M:%S", time.localtime(t)) if t else "its start"
    return (
        f"wattui: session {w.session_id}: the disk refused the end of the session "
        f"({w.last_error or 'write error'}); the run {status}, but its files end at {upto} "
        f"with {format_energy(live.get('energy_j'))} and it will be listed as interrupted"
    )


def format_summary(meta: dict) -> str:
    """The short human summary printed when a recording ends."""
    started, ended = meta.get("started_at"), meta.get("ended_at")
    dur = (ended - started) if started and ended else 0.0
    sim = " [SIMULATED]" if meta.get("simulated") else ""
    lines = [
        f"wattui: session {meta['id']}{sim} {meta.get('status')}"
        + (f" (exit {meta['exit_code']})" if meta.get("exit_code") is not None else ""),
        f"  duration {dur:.1f} s",
    ]
    summary = meta.get("summary") or {}
    measured = False
    for d in meta.get("devices", []):
        if d["kind"] not in ENERGY_KINDS:
            continue
        s = summary.get(d["key"], {})
        measured = True
        mean = s.get("mean_w")
        peak = s.get("peak_w")
        lines.append(
            f"  {d['key']:<14} {format_energy(s.get('energy_j')):>12}  "
            f"mean {mean:.1f} W  peak {peak:.1f} W  ({d['energy_method']})"
            if mean is not None and peak is not None
            else f"  {d['key']:<14} {format_energy(s.get('energy_j')):>12}  ({d['energy_method']})"
        )
        share = summary.get(f"{d['key']}:run")
        if share is not None:
            lines.append(
                f"  {'  this run':<14} {format_energy(share.get('energy_j')):>12}  "
                "(estimated: SM share, idle shared)"
            )
    if measured:
        lines.append(f"  total          {format_energy(meta.get('energy_j')):>12}")
    else:
        lines.append("  no energy was measured (see `wattui doctor`)")
    if meta.get("dropped_rows"):
        lines.append(
            f"  {meta['dropped_rows']} sample/event rows could not be written (disk full); "
            "the totals above are complete"
        )
    if meta.get("output_dropped_bytes"):
        lines.append(f"  output.log is missing {meta['output_dropped_bytes']} bytes of the run's output")
    if meta.get("output_lines_not_parsed"):
        lines.append(
            f"  {meta['output_lines_not_parsed']} output lines not searched for metrics "
            "(printed faster than they could be parsed)"
        )
    return "\n".join(lines)
