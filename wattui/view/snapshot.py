"""The live screen's view model: immutable snapshots built off the event loop.

    session files --SessionTail/session_record--> SnapshotBuilder (worker thread)
        --LiveSnapshot (frozen)--> post_message --> the UI applies it in batch_update()

Nothing here imports Textual, so it can be tested and benchmarked on its own, and it
is the only place that touches the disk on behalf of the viewer. Memory is bounded
whatever the session's length: the power history keeps per-second buckets for the
last hour and coarser buckets (merged as they fill) for everything before.

Its parts: the power history (history.py), the metrics tracked from events
(metric_tracker.py), the run's output (output.py), the samples followed in bounded memory
(samples_tail.py); a multi-node run is merged by group_snapshot.py.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from wattui.model.kinds import ENERGY_KINDS
from wattui.sanitize import clean_text
from wattui.store import schema
from wattui.view.event_rows import LiveEventRows
from wattui.view.history import FINE_BUCKET_S, PowerHistory
from wattui.view.metric_tracker import MetricsSummary, MetricTracker, _finite
from wattui.view.output import OutputTail
from wattui.view.sample_rows import SampleRows, latest_rows, power_buckets
from wattui.view.samples_tail import BoundedTail, _other_processes


@dataclass(frozen=True)
class GpuRow:
    key: str
    index: int | None
    name: str
    watts: float | None
    power_method: str | None
    util_pct: float | None
    mem_used_b: float | None
    temp_c: float | None
    power_limit_w: float | None
    energy_j: float | None
    energy_method: str | None
    others: str = "n/a"  # other processes on the GPU: "none", "2 (pids ...)" or "n/a"
    run_energy_j: float | None = None  # the run's estimated share (shared GPUs)
    run_share_pct: float | None = None  # the run's share of the GPU's latest energy, %
    has_run_share: bool = False  # the session records the run's share of this GPU
    mig: bool = False  # selected through a MIG instance: figures are per parent GPU


@dataclass(frozen=True)
class CpuRow:
    key: str
    name: str
    watts: float | None
    energy_j: float | None
    method: str | None


@dataclass(frozen=True)
class LiveSnapshot:
    session_id: str
    now: float
    status: str = "starting"
    exit_code: int | None = None
    mode: str | None = None
    command: str = ""
    pid: int | None = None
    host: str = ""
    simulated: bool = False
    started_at: float | None = None
    elapsed_s: float | None = None
    gpus: tuple[GpuRow, ...] = ()
    cpus: tuple[CpuRow, ...] = ()
    total_w: float | None = None
    power_method: str | None = None
    history: tuple[tuple[float, float], ...] = ()
    proc_cpu_pct: float | None = None
    proc_rss_b: float | None = None
    metrics: MetricsSummary = field(default_factory=MetricsSummary)
    record: Mapping = field(default_factory=lambda: MappingProxyType({}))
    notes: tuple[str, ...] = ()
    output_lines: tuple[str, ...] = ()  # new lines of output.log since the last snapshot
    output_live: tuple[str, ...] = ()  # each stream's unfinished line (a progress bar), now
    has_output: bool = False
    recorder_pid: int | None = None
    recorder_started: float | None = None
    error: str | None = None
    reason: str | None = None  # why the run failed or was interrupted (sessions.failure_reason)
    seq: int = 0  # snapshot number
    group: str | None = None  # a multi-node run: its group id (session_id is "group:<ID>")
    node_count: int = 0  # a multi-node run: how many nodes' sessions it merges


# -- the builder -------------------------------------------------------------------------------
class SnapshotBuilder:
    """Reads one session incrementally and builds :class:`LiveSnapshot` objects.

    Call :meth:`poll` from one thread only (the viewer's worker). ``clock`` is the
    viewer's notion of now (tests freeze it).
    """

    def __init__(
        self,
        session_dir: Path,
        clock: Callable[[], float] = time.time,
        record_fn: Callable | None = None,
    ):
        from wattui.store.reader import Session

        self.dir = Path(session_dir)
        self.clock = clock
        self.session = Session.open(self.dir)
        self.tail = BoundedTail(self.dir)
        self.history = PowerHistory()
        self.metrics = MetricTracker()
        self.output = OutputTail(self.dir / schema.OUTPUT)
        self.events = LiveEventRows(self.dir)
        self.latest: dict[str, dict] = {}
        self.notes: deque[str] = deque(maxlen=20)
        self._record_fn = record_fn
        self._record: dict = {}
        self._record_cost = 0.0
        self._record_at = -1e9
        self._seq = 0
        self._last_total: float | None = None
        self._meta_sig: tuple | None = None
        self._meta: dict = {}

    @property
    def caught_up(self) -> bool:
        """False while a backlog of the session's files remains to be read."""
        return self.tail.caught_up

    def _record_of(self, session, force: bool) -> dict:
        """session_record, at most about once a second and less if it is slow."""
        now = time.monotonic()
        if not force and now - self._record_at < max(0.9, 10 * self._record_cost):
            return self._record
        fn = self._record_fn
        if fn is None:
            from wattui.sessions import session_record

            def fn(session):
                # a running session's events are followed, not read again every second
                rows = self.events.poll() if session.status == "running" else None
                return session_record(session, event_rows=rows)

        t0 = time.monotonic()
        try:
            self._record = fn(session)
        except Exception as e:  # noqa: BLE001 - a metrics bug must not kill the viewer
            self.notes.append(f"cannot compute the session record: {e}")
        # the first call pays once for imports (Polars, the metrics), loaded after the first
        # frame: paced by it, a fresh run's energy waited 10x that (30 s under load)
        first = self._record_at < 0
        self._record_cost = 0.0 if first else time.monotonic() - t0
        self._record_at = now
        return self._record

    def _open_session(self):
        """The session with fresh meta (status, exit code, pid). meta.json is read and
        validated again only when it changed: the recorder rewrites it a few times a run,
        the viewer polls every second. The status (is the recorder alive?) is new each
        time."""
        from wattui.store.reader import Session

        try:
            d, m = os.lstat(self.dir), os.lstat(self.dir / schema.META)
            sig = (d.st_ino, d.st_mode, m.st_ino, m.st_mode, m.st_size, m.st_mtime_ns)
        except OSError:
            sig = None
        if sig is not None and sig == self._meta_sig:
            return Session(self.dir, self._meta)
        session = Session.open(self.dir)
        self._meta_sig, self._meta = sig, session.meta
        return session

    def poll(self) -> LiveSnapshot:
        from wattui.store.reader import CorruptSession

        try:
            session = self._open_session()
        except CorruptSession as e:
            return LiveSnapshot(
                session_id=clean_text(self.dir.name), now=self.clock(), error=clean_text(str(e))
            )
        meta = session.meta
        status = session.status
        kinds = {d.get("key"): d.get("kind") for d in meta.get("devices", [])}
        try:
            frame, events = self.tail.poll()
            if frame is not None:
                self._fold_samples(frame, kinds)
        except Exception as e:  # noqa: BLE001 - a torn file: try again next time
            events = []
            self.notes.append(f"cannot read samples: {e}")
        for ev in events:
            self.metrics.add(ev)
            if ev.get("kind") in ("warning", "signal") and ev.get("message"):
                self.notes.append(str(ev["message"]))
        finished = status != "running"
        rec = self._record_of(session, force=finished or not self._record)
        lines = self.output.poll()
        return self._build(session, meta, status, rec, lines)

    def _fold_samples(self, frame, kinds: dict) -> None:
        """Fold new sample rows (a LazyFrame, or a few rows as a list) into the latest
        readings and the history, materialising only small aggregates."""
        energy_keys = [k for k, v in kinds.items() if v in ENERGY_KINDS]
        if isinstance(frame, SampleRows):
            self.latest.update(latest_rows(frame))
            buckets, last = power_buckets(frame, energy_keys)
            for t, w, n in buckets:
                self.history.add(t, w, n)
            if buckets:
                self._last_total = float(last)
            return
        import polars as pl

        last = (
            frame.group_by("device")
            .agg(pl.all().sort_by("seq").last())
            .collect(engine=self.tail.engine)
        )
        for row in last.iter_rows(named=True):
            self.latest[row["device"]] = row
        tot = frame.filter(pl.col("device").is_in(energy_keys) & pl.col("power_w").is_not_null())
        # ticks in file order: a bucket's mean sums them in that order, the same on every
        # run (and the same as sample_rows, which folds small chunks without Polars)
        per_tick = tot.group_by("seq", maintain_order=True).agg(
            pl.col("t_wall").first(), pl.col("power_w").sum()
        )
        per_sec = (
            per_tick.with_columns(b=(pl.col("t_wall") / FINE_BUCKET_S).floor())
            .group_by("b")
            .agg(
                t=pl.col("t_wall").min(),
                w=pl.col("power_w").mean(),
                n=pl.len(),
                last_seq=pl.col("seq").max(),
                last_w=pl.col("power_w").sort_by("seq").last(),
            )
            .sort("b")
            .collect(engine=self.tail.engine)
        )
        if not per_sec.height:
            return
        add = self.history.add
        for t, w, n in zip(
            per_sec["t"].to_list(), per_sec["w"].to_list(), per_sec["n"].to_list(), strict=True
        ):
            add(t, w, n)
        self._last_total = float(per_sec["last_w"][-1])

    def _build(self, session, meta: dict, status: str, rec: dict, lines: list[str]) -> LiveSnapshot:
        now = self.clock()
        self._seq += 1
        started = meta.get("started_at")
        ended = meta.get("ended_at") if status != "running" else None
        if ended is None and status != "running":
            ended = rec.get("ended_at")
        elapsed = None
        if started is not None:
            elapsed = max(0.0, (ended if ended is not None else now) - started)
        rec_by_key = {g["key"]: g for g in (rec.get("gpus") or []) + (rec.get("cpu") or [])}
        gpus, cpus = [], []
        power_methods = set()
        for d in meta.get("devices", []):
            key = d.get("key")
            lat = self.latest.get(key, {})
            r = rec_by_key.get(key, {})
            if d.get("kind") == "gpu":
                pm = lat.get("power_method") or d.get("power_method")
                power_methods.add(pm)
                watts = _finite(lat.get("power_w"))
                if status != "running":  # a finished run: its mean, labelled so
                    watts, pm = _finite(r.get("mean_w")), "mean"
                gpus.append(
                    GpuRow(
                        key=key,
                        index=d.get("index"),
                        name=clean_text(d.get("name") or key),
                        watts=watts,
                        power_method=pm,
                        util_pct=_finite(lat.get("util_pct")) if status == "running" else None,
                        mem_used_b=_finite(lat.get("mem_used_b")) if status == "running" else None,
                        temp_c=_finite(lat.get("temp_c")) if status == "running" else None,
                        power_limit_w=_finite(d.get("power_limit_w")),
                        energy_j=_finite(r.get("energy_j")),
                        energy_method=d.get("energy_method"),
                        others=_other_processes(
                            lat.get("pids"), self.latest.get("proc", {}).get("pids")
                        )
                        if status == "running"
                        else "n/a",
                        run_energy_j=_finite(r.get("run_energy_j")),
                        run_share_pct=_finite(self.latest.get(f"{key}:run", {}).get("util_pct"))
                        if status == "running"
                        else None,
                        has_run_share="run_energy_j" in r,
                        mig=any(str(n).startswith("MIG:") for n in d.get("notes") or ()),
                    )
                )
            elif d.get("kind") in ("cpu", "dram"):
                power_methods.add(d.get("power_method"))
                cpus.append(
                    CpuRow(
                        key=key,
                        name=clean_text(d.get("name") or key),
                        watts=_finite(lat.get("power_w")) if status == "running" else None,
                        energy_j=_finite(r.get("energy_j")),
                        method=d.get("energy_method"),
                    )
                )
        proc = self.latest.get("proc", {}) if status == "running" else {}
        from wattui.sessions import command_label

        command = clean_text(" ".join(command_label(meta.get("command")).split()))  # one line
        if meta.get("mode") == "attach" and meta.get("pid"):
            command = f"PID {meta['pid']}" + (f" ({command})" if command else "")
        power_methods.discard(None)
        reason = None
        if status not in ("running", "finished"):
            from wattui.sessions import failure_reason

            reason = failure_reason(session)
        return LiveSnapshot(
            session_id=session.id,
            now=now,
            status=status,
            exit_code=meta.get("exit_code"),
            mode=meta.get("mode"),
            command=command,
            pid=meta.get("pid"),
            host=clean_text(meta.get("host")),
            simulated=bool(meta.get("simulated")),
            started_at=started,
            elapsed_s=elapsed,
            gpus=tuple(gpus),
            cpus=tuple(cpus),
            total_w=self._last_total if status == "running" else None,
            power_method="+".join(sorted(power_methods)) or None,
            history=self.history.points(),
            proc_cpu_pct=_finite(proc.get("util_pct")),
            proc_rss_b=_finite(proc.get("mem_used_b")),
            metrics=self.metrics.summary(),
            record=MappingProxyType(dict(rec)),
            notes=tuple(clean_text(n, 300) for n in list(self.notes)[-5:]),
            output_lines=tuple(lines),
            output_live=self.output.live,
            has_output=meta.get("mode") == "launch" or os.path.lexists(self.dir / schema.OUTPUT),
            recorder_pid=meta.get("recorder_pid"),
            recorder_started=meta.get("recorder_started"),
            reason=reason,
            seq=self._seq,
        )
