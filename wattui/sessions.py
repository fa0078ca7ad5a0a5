"""The record of a session that `wattui sessions`, `wattui show`, the comparison
screen and exports all agree on: one flat dictionary per session."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from wattui.model.kinds import GPU, HOST_KINDS, SHARE
from wattui.model.session import SessionRecord
from wattui.sanitize import clean_text
from wattui.store.paths import recorder_log_path
from wattui.store.reader import Session
from wattui.store.schema import OUTPUT, SAMPLES_FINAL, SAMPLES_LIVE
from wattui.store.summary import stats_from_samples

TAIL_BYTES = 8192


def command_label(command) -> str:
    """A command for a name column: the program's base name, not its path (an attached
    run's argv[0] is often ``/home/u/project/.venv/bin/python``)."""
    if isinstance(command, list | tuple):
        parts = [str(c) for c in command]
    else:
        parts = str(command or "").split(" ")
    if parts and "/" in parts[0]:
        parts[0] = parts[0].rstrip("/").rsplit("/", 1)[-1] or parts[0]
    return " ".join(parts).strip()


def _last_line(path: Path) -> str | None:
    """The last non-empty line of a file (read from its end), printable, or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return None
    for raw in reversed(re.split(rb"\r\n|\r|\n", data)):
        line = clean_text(raw.decode("utf-8", "replace"), max_len=300).strip()
        if line:
            return line
    return None


def failure_reason(session: Session) -> str | None:
    """Why a session failed or was interrupted, in one line, or None when it did not.

    The recorder's own note (``cannot start 'pythn': No such file or directory``) first;
    for a run that exited non-zero, its exit code and last line of output; for a
    recorder that died without finishing the session, the last line of its background
    log (``record --detach``).
    """
    status = session.status
    if status in ("running", "finished"):
        return None
    meta = session.meta
    note = meta.get("end_note")
    if isinstance(note, str) and note.strip():
        return clean_text(note).strip()
    code = meta.get("exit_code")
    if status == "failed" and isinstance(code, int):
        last = _last_line(session.dir / OUTPUT)
        return f"the run exited with code {code}" + (f"; its last output: {last}" if last else "")
    if meta.get("status") == "running":  # the recorder died without finishing the session
        log = recorder_log_path(session.dir.parent.parent, session.id)
        last = _last_line(log)
        if last:
            return f"the recorder stopped without finishing the session: {last} (log: {log})"
        return "the recorder stopped without finishing the session (killed, or the machine went down)"
    return None


def _needs_live(session: Session) -> bool:
    """Does the record read ``live.json``? A running session's totals and time, and the
    totals of one that ended without a summary."""
    return session.status == "running" or not session.meta.get("summary")


def _device_stats(session: Session, live: dict | None) -> dict:
    """``live``: ``session.live_totals()`` when :func:`_needs_live` (read once a record)."""
    meta = session.meta
    if not _needs_live(session):
        return meta["summary"]
    if live and isinstance(live.get("devices"), dict):
        return live["devices"]
    # Killed before its first flush of totals: recompute from what reached the disk.
    d = session.dir
    if os.path.lexists(d / SAMPLES_FINAL) or os.path.lexists(d / SAMPLES_LIVE):
        try:
            return stats_from_samples(session.samples())
        except Exception:  # noqa: BLE001 - a torn file must not break the listing
            return {}
    return {}


def _counts(d) -> dict[str, int]:
    if not isinstance(d, dict):
        return {}
    return {
        str(k): int(v)
        for k, v in d.items()
        if isinstance(v, int) and not isinstance(v, bool) and v > 0
    }


def session_record(
    session: Session, metrics: bool = True, event_rows: list[dict] | None = None, **metric_opts
) -> dict:
    """The JSON shape of one session (see docs/session-format.md): the dictionary of a
    :class:`wattui.model.session.SessionRecord` (``SessionRecord.from_dict`` types it).

    ``event_rows``: the rows ``session.events()`` would give, when the caller follows them
    already (the live screen reads only what was appended); None reads them."""
    meta = session.meta
    live = session.live_totals() if _needs_live(session) else None
    stats = _device_stats(session, live)
    started = meta.get("started_at")
    ended = meta.get("ended_at")
    if ended is None and session.status != "running":
        ended = max((s.get("duration_s") or 0.0 for s in stats.values()), default=0.0)
        ended = (started + ended) if started else None
    last_t = live.get("t_wall") if live and session.status == "running" else None
    duration = None
    if started is not None:
        end = ended if ended is not None else (last_t or started)
        duration = max(0.0, end - started)

    def devs(kinds):
        out = []
        for d in meta.get("devices", []):
            if d.get("kind") not in kinds:
                continue
            s = stats.get(d["key"], {})
            out.append(
                {
                    "index": d.get("index"),
                    "key": d["key"],
                    "uuid": d.get("uuid", ""),
                    "name": d.get("name", ""),
                    "energy_j": s.get("energy_j"),
                    "method": d.get("energy_method"),
                    "power_method": d.get("power_method"),
                    "mean_w": s.get("mean_w"),
                    "peak_w": s.get("peak_w"),
                    "last_w": s.get("last_w"),
                    "driver": d.get("driver"),
                    "simulated": bool(d.get("simulated")),
                }
            )
        return out

    gpus = devs((GPU,))
    shares = {d["key"] for d in meta.get("devices", []) if d.get("kind") == SHARE}
    for g in gpus:  # the run's estimated share of a GPU other processes may use too
        if f"{g['key']}:run" in shares:
            g["run_energy_j"] = stats.get(f"{g['key']}:run", {}).get("energy_j")
    cpu = devs(HOST_KINDS)
    measured = [x["energy_j"] for x in gpus + cpu if x["energy_j"] is not None]
    baseline = meta.get("baseline") or None
    above_idle = None
    if baseline and measured and duration:
        idle_w = sum(
            w for k, w in (baseline.get("watts") or {}).items() if k in {x["key"] for x in gpus + cpu}
        )
        above_idle = sum(measured) - idle_w * duration
    rec = {
        "id": session.id,
        "name": meta.get("name"),
        "tags": meta.get("tags") or [],
        "command": meta.get("command"),
        "mode": meta.get("mode"),
        "pid": meta.get("pid"),
        "host": meta.get("host"),
        "group": meta.get("group"),
        "status": session.status,
        "exit_code": meta.get("exit_code"),
        "started_at": started,
        "ended_at": ended,
        "duration_s": duration,
        "energy_j": sum(measured) if measured else None,
        "gpu_energy_j": sum(x["energy_j"] for x in gpus if x["energy_j"] is not None)
        if any(x["energy_j"] is not None for x in gpus)
        else None,
        "energy_above_idle_j": above_idle,
        "simulated": bool(meta.get("simulated")),
        "gpus": gpus,
        "cpu": cpu,
        "notes": meta.get("notes") or [],
        "reason": failure_reason(session),
        "baseline": baseline,
        # metric values refused or dropped, per reason (counted by the recorder's intake)
        "metric_rejections": _counts(meta.get("metric_rejections")),
    }
    if metrics:
        from wattui.metrics.session_metrics import metrics_for_session

        rec.update(metrics_for_session(session, rec, rows=event_rows, **metric_opts))
        if session.problems and rec.get("accuracy") is None:
            # The events could not be read: the results the recorder stored at the end
            # stand in (the problem itself is listed with the session).
            for k in STORED_RESULTS:
                if meta.get(k) is not None and rec.get(k) is None:
                    rec[k] = meta[k]
    rec["problems"] = list(session.problems)
    return clean_record(rec)


def clean_record(value):
    """``value`` (a record, or anything in one) with every string passed through
    :func:`wattui.sanitize.clean_text`: names, tags, commands, hosts, models, notes and
    metric names come from runs and users, and every view and export shows this record."""
    t = type(value)
    if t is str:
        return value if value.isascii() and value.isprintable() else clean_text(value)
    if t is dict:
        return {
            (k if type(k) is not str or (k.isascii() and k.isprintable()) else clean_text(k)): (
                v if type(v) in _PLAIN else clean_record(v)
            )
            for k, v in value.items()
        }
    if t is list or t is tuple:
        return [v if type(v) in _PLAIN else clean_record(v) for v in value]
    if isinstance(value, str):
        return clean_text(value)
    return value


_PLAIN = frozenset((int, float, bool, type(None)))


STORED_RESULTS = ("accuracy", "best_accuracy", "epochs_done", "model")


def records_of(sessions: list[Session], problems: list[str], **opts) -> list[dict]:
    """``session_record`` of each session; one that cannot be summarised is skipped with a
    line in ``problems``, and each record's own problems are added there too."""
    out = []
    for s in sessions:
        try:
            rec = session_record(s, **opts)
        except ValueError:
            if opts:
                raise  # bad alpha/beta/unit from the caller
            problems.append(f"{s.dir.name}: cannot be summarised (skipped)")
            continue
        except Exception as e:  # noqa: BLE001 - one bad session never breaks a listing
            problems.append(f"{s.dir.name}: cannot be summarised ({type(e).__name__}) (skipped)")
            continue
        problems.extend(f"{s.id}: {p}" for p in rec["problems"])
        out.append(rec)
    return out


RECORDS_VIEW = "records.2"  # bump the number when records change


def list_records(
    root, cache: bool = True, as_json: bool = False, **opts
) -> tuple[list, list[str]]:
    """``session_record`` of every readable session of the store at ``root``, oldest
    first (each as JSON text with ``as_json``), and one line per thing skipped or not
    fully read. Sessions whose files are unchanged come from the store's record cache
    (see :mod:`wattui.store.record_cache`); every other one is read and validated. With
    ``opts`` (SAM alpha, beta, unit) every record is computed afresh."""
    from wattui.store.reader import CorruptSession, scan_store
    from wattui.store.record_cache import CACHEABLE, RecordCache, all_printable, session_stamp

    rcache = RecordCache(Path(root), RECORDS_VIEW, enabled=cache and not opts)
    entries, problems = scan_store(Path(root))
    out: list = []
    for e in entries:
        stamp = session_stamp(e.path)
        text = rcache.get_text(e.name, stamp)
        if text is not None and as_json and _NO_PROBLEMS in text and all_printable(text):
            out.append(text)  # whole (its digest), clean, nothing to report: as it is
            continue
        rec = _cached_record(text) if text is not None else None
        if rec is not None:
            if not all_printable(text):
                rec = clean_record(rec)
                text = None
            problems.extend(f"{rec['id']}: {p}" for p in rec["problems"])
            out.append((text or json.dumps(rec)) if as_json else rec)
            continue
        try:
            s = Session.open(Path(e.path))
        except CorruptSession as err:
            problems.append(f"{err} (skipped)")
            continue
        got = records_of([s], problems, **opts)
        if not got:
            continue
        text = None
        if got[0]["status"] in CACHEABLE:
            text = rcache.put(e.name, stamp, got[0])
        out.append((text or json.dumps(got[0])) if as_json else got[0])
    rcache.save()
    return out, [clean_text(p) for p in problems]  # directory names are anyone's


_NO_PROBLEMS = '"problems": []'


def cached_record(session: Session) -> dict:
    """``session_record(session)``, from the store's record cache when it holds this
    session unchanged (no events or samples read), else from its files."""
    from wattui.store.record_cache import CACHEABLE, all_printable, lookup, session_stamp

    if session.status in CACHEABLE:
        text = lookup(session.dir.parent.parent, RECORDS_VIEW, session.dir.name, session_stamp(session.dir))
        rec = _cached_record(text) if text is not None else None
        if rec is not None:
            return rec if all_printable(text) else clean_record(rec)
    return session_record(session)


def _cached_record(text: str) -> dict | None:
    """A record from the cache, or None when it is not JSON of a :class:`SessionRecord`
    (every known key of its type): the cache is a file in the store, trusted no further
    than the session files it was made from (a bad entry is read again)."""
    try:
        rec = json.loads(text)
        SessionRecord.from_dict(rec)
    except (ValueError, RecursionError):  # RecordError is a ValueError
        return None
    return rec


