"""A multi-node run followed as one: a SnapshotBuilder per node, merged."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from wattui.groups.merge import group_status, held_sum_points, merge_group
from wattui.model.group import GroupRef
from wattui.store.group_scan import scan_group
from wattui.view.snapshot import LiveSnapshot, SnapshotBuilder

GROUP_RESCAN_S = 5.0  # how often a running group's store is looked at for nodes that joined


def merge_snapshots(
    group_id: str, snaps: Sequence[LiveSnapshot], now: float, seq: int = 0
) -> LiveSnapshot:
    """One snapshot for the nodes of a group (``snaps``: one per node's session)."""
    sid = str(GroupRef(group_id))
    if not snaps:
        return LiveSnapshot(session_id=sid, now=now, group=group_id, seq=seq)
    recs = [dict(s.record) for s in snaps if s.record and s.record.get("id")]
    merged: dict = merge_group(group_id, recs) if recs else {}
    nodes = merged.get("nodes") or []
    order = {n["id"]: i for i, n in enumerate(nodes)}
    label_of = {n["id"]: n["label"] for n in nodes}
    snaps = sorted(snaps, key=lambda s: (order.get(s.session_id, len(order)), s.session_id))
    labels = [label_of.get(s.session_id) or s.host or s.session_id for s in snaps]

    status = group_status((s.status for s in snaps), default=snaps[0].status)
    running = status == "running"
    starts = [s.started_at for s in snaps if s.started_at is not None]
    started = min(starts) if starts else None
    elapsed = None
    if started is not None:
        ends = [
            s.started_at + (s.elapsed_s or 0.0)
            for s in snaps
            if s.started_at is not None and s.status != "running"
        ]
        end = now if running or not ends else max(ends)
        elapsed = max(0.0, end - started)
    gpus = tuple(
        replace(g, key=f"{label}:{g.key}", index=None)
        for s, label in zip(snaps, labels)
        for g in s.gpus
    )
    cpus = tuple(
        replace(c, key=f"{label}:{c.key}") for s, label in zip(snaps, labels) for c in s.cpus
    )
    watts = [s.total_w for s in snaps if s.status == "running" and s.total_w is not None]
    methods = sorted({m for s in snaps if s.power_method for m in s.power_method.split("+")})
    cpu_pcts = [s.proc_cpu_pct for s in snaps if s.proc_cpu_pct is not None]
    rss = [s.proc_rss_b for s in snaps if s.proc_rss_b is not None]
    metrics = max((s.metrics for s in snaps), key=lambda m: m.count)
    notes = [f"{label}: {n}" for s, label in zip(snaps, labels) for n in s.notes]
    errors = [f"{label}: {s.error}" for s, label in zip(snaps, labels) if s.error]
    with_output = [(s, label) for s, label in zip(snaps, labels) if s.has_output]
    if len(with_output) > 1:  # several nodes print: say which line is whose
        lines = tuple(f"[{label}] {x}" for s, label in with_output for x in s.output_lines)
        live = tuple(f"[{label}] {x}" for s, label in with_output for x in s.output_live)
    else:
        lines = tuple(x for s, _ in with_output for x in s.output_lines)
        live = tuple(x for s, _ in with_output for x in s.output_live)
    if errors and len(errors) < len(snaps):
        notes += errors
    reasons = [f"{label}: {s.reason}" for s, label in zip(snaps, labels) if s.reason]
    n = len(snaps)
    return LiveSnapshot(
        session_id=sid,
        now=now,
        status=status,
        exit_code=merged.get("exit_code") if not running else None,
        mode=snaps[0].mode,
        command=snaps[0].command,
        pid=None,
        host=f"{n} node{'s' if n != 1 else ''}",
        simulated=any(s.simulated for s in snaps),
        started_at=started,
        elapsed_s=elapsed,
        gpus=gpus,
        cpus=cpus,
        total_w=sum(watts) if running and watts else None,
        power_method="+".join(methods) or None,
        history=held_sum_points([s.history for s in snaps], [s.status == "running" for s in snaps]),
        proc_cpu_pct=sum(cpu_pcts) if cpu_pcts else None,
        proc_rss_b=sum(rss) if rss else None,
        metrics=metrics,
        record=MappingProxyType(merged),
        notes=tuple(notes)[-5:],
        output_lines=lines,
        output_live=live,
        has_output=bool(with_output),
        recorder_pid=None,  # the nodes' recorders run elsewhere: the viewer stops none
        recorder_started=None,
        error="; ".join(errors) if errors and len(errors) == len(snaps) else None,
        reason="; ".join(reasons) or None,
        seq=seq,
        group=group_id,
        node_count=n,
    )


class GroupSnapshotBuilder:
    """Follows every session of one multi-node group in a shared store: one
    :class:`SnapshotBuilder` per node, polled in turn (same thread), merged into one
    :class:`LiveSnapshot` by :func:`merge_snapshots`. While the group runs, the store is
    looked at every few seconds for nodes that joined late."""

    def __init__(
        self,
        store_root: Path,
        group_id: str,
        clock: Callable[[], float] = time.time,
        record_fn: Callable | None = None,
    ):
        group_id = GroupRef.of(group_id).id
        self.root = Path(store_root)
        self.group = group_id
        self.clock = clock
        self._record_fn = record_fn
        self.parts: dict[str, SnapshotBuilder] = {}
        self._checked: set[str] = set()
        self._scan_at = time.monotonic()
        self._seq = 0
        self._last_status = "running"
        self._scan()
        if not self.parts:
            raise LookupError(f"no session of group {group_id!r} in {self.root}")

    @property
    def caught_up(self) -> bool:
        return all(b.caught_up for b in self.parts.values())

    def _scan(self) -> None:
        """Follow the group's sessions not seen yet (a half-written one: at the next scan)."""
        for s in scan_group(self.root, self.group, seen=self._checked):
            try:
                self.parts[s.dir.name] = SnapshotBuilder(
                    s.dir, clock=self.clock, record_fn=self._record_fn
                )
            except Exception:  # noqa: BLE001 - unreadable now: retry at the next scan
                self._checked.discard(s.dir.name)

    def poll(self) -> LiveSnapshot:
        if self._last_status in ("running", "starting"):
            t = time.monotonic()
            if t - self._scan_at >= GROUP_RESCAN_S:
                self._scan_at = t
                self._scan()
        snaps = [b.poll() for b in self.parts.values()]
        self._seq += 1
        snap = merge_snapshots(self.group, snaps, self.clock(), self._seq)
        self._last_status = snap.status
        return snap


