"""The `wattui` command line.

    wattui -- CMD ARGS...          launch CMD under a recorder and watch it live
    wattui attach PID              follow a running process and watch it live
    wattui record [...] -- CMD     headless recording (also --pid PID, --detach)
    wattui sessions / show ID      list and inspect recorded sessions
    wattui doctor                  what this machine can measure
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wattui import __version__, exitcodes
from wattui.argtypes import nonneg_float, positive_float

EXIT_USAGE = exitcodes.USAGE


class CliError(Exception):
    """One line for the user; exits with ``code`` (default 2, see wattui.exitcodes)."""

    def __init__(self, message: str, code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- shared options -------------------------------------------------------------------
def _add_store(p: argparse.ArgumentParser) -> None:
    """``--store DIR``, the same for every command (wattui.store.paths.store_root)."""
    p.add_argument(
        "--store",
        metavar="DIR",
        help="session store (default: $WATTUI_HOME, else $XDG_DATA_HOME/wattui, else ~/.local/share/wattui)",
    )



def _add_sam(p: argparse.ArgumentParser) -> None:
    """SAM's parameters for a listing: default, the ones each session was recorded with."""
    g = p.add_argument_group("SAM (default: as each session was recorded)")
    g.add_argument(
        "--alpha", "--sam-alpha", dest="sam_alpha", type=float, metavar="A", help="SAM's alpha"
    )
    g.add_argument(
        "--beta", "--sam-beta", dest="sam_beta", type=float, metavar="B", help="SAM's beta"
    )
    g.add_argument("--sam-unit", metavar="kWh|Wh|J", help="SAM's electricity unit")


def _sam_opts(args) -> dict:
    """The SAM options given (checked), as ``session_record`` keywords."""
    opts = {k: getattr(args, k, None) for k in ("sam_alpha", "sam_beta", "sam_unit")}
    opts = {k: v for k, v in opts.items() if v is not None}
    if opts:
        from wattui.metrics.sam import check_params

        try:
            checked = check_params(
                opts.get("sam_alpha", 5.0), opts.get("sam_beta", 5.0), opts.get("sam_unit", "kWh")
            )
        except ValueError as e:
            raise CliError(str(e)) from None
        keys = ("sam_alpha", "sam_beta", "sam_unit")
        opts = {k: v for k, v in zip(keys, checked) if k in opts}
    return opts


def _fmt_sam(rec: dict) -> str:
    """SAM with its unit, ``*`` when the log dominates it, n/a when undefined."""
    if "sam" not in rec:
        return ""
    sam = rec.get("sam")
    if sam is None:
        return "n/a" if rec.get("accuracy") is not None else ""
    return f"{sam:.3f} {rec.get('sam_unit') or ''}".rstrip() + ("*" if rec.get("sam_flag") else "")


def _simulate_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--simulate takes a number of GPUs, not {value!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("--simulate takes 1 to 64 GPUs")
    return n


def _session_id_arg(value: str) -> str:
    from wattui.store.paths import check_session_id

    try:
        return check_session_id(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _log_to_arg(value: str) -> str:
    from wattui.exporters.live_trackers import parse_spec

    try:
        parse_spec(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def add_record_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `record`, `wattui -- CMD` and `attach`."""
    _add_store(p)
    p.add_argument(
        "--simulate",
        nargs="?",
        const=1,
        type=_simulate_arg,
        metavar="N",
        help="use N simulated GPUs (default 1) instead of real ones; marked SIMULATED everywhere",
    )
    p.add_argument("--period", type=positive_float, default=None, metavar="S", help="sampling period in seconds (default 0.2)")
    p.add_argument("--baseline", type=nonneg_float, default=0.0, metavar="S", help="measure idle power for S seconds before launch")
    p.add_argument("--name", help="a name for this session (shown in the comparison screen)")
    p.add_argument("--tag", action="append", default=[], help="tag the session (repeatable)")
    p.add_argument(
        "--group",
        help="multi-node group id (default: JOBID.STEPID in a Slurm step of several nodes or tasks, "
        "$TORCHELASTIC_RUN_ID when WORLD_SIZE > 1; else none)",
    )
    p.add_argument("--rapl-root", default="/sys/class/powercap", help=argparse.SUPPRESS)
    p.add_argument("--session-id", type=_session_id_arg, help=argparse.SUPPRESS)
    p.add_argument("--session-reserved", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prometheus-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT while recording")
    p.add_argument("--prometheus-host", default="127.0.0.1", metavar="HOST", help="address for --prometheus-port (default 127.0.0.1)")
    p.add_argument(
        "--log-to",
        type=_log_to_arg,
        metavar="TRACKER[=TARGET]",
        help="log each epoch's energy, power, accuracy and SAM live to mlflow[=URI], wandb[=DIR] "
        "or tensorboard[=LOGDIR] (the library must be installed)",
    )
    try:
        from wattui.record.options import add_metric_options
    except ImportError:
        return
    add_metric_options(p)


def options_from_args(args) -> RecordOptions:  # noqa: F821 - imported lazily
    import os

    from wattui.record.options import RecordOptions
    from wattui.sampler import DEFAULT_PERIOD_S

    metrics = {}
    try:
        from wattui.record.options import metric_options_from_args
    except ImportError:
        pass
    else:
        metrics = metric_options_from_args(args)
    from wattui.groups.node_env import default_group

    group = args.group or default_group(os.environ)
    from wattui.store.manage import ManageError, check_name, check_tag

    try:  # the same rules as `wattui rename` / `wattui tag`: no escapes into a terminal
        name = check_name(args.name) if args.name is not None else None
        tags = [check_tag(t) for t in args.tag]
    except ManageError as e:
        raise CliError(f"--name/--tag: {e}") from None
    return RecordOptions(
        store=Path(args.store) if args.store else None,
        simulate=args.simulate,
        period_s=args.period or DEFAULT_PERIOD_S,
        baseline_s=args.baseline,
        name=name,
        tags=tags,
        session_id=args.session_id,
        session_reserved=bool(getattr(args, "session_reserved", False)),
        rapl_root=args.rapl_root,
        group=group,
        metrics=metrics,
        prometheus_port=args.prometheus_port,
        log_to=getattr(args, "log_to", None),
        prometheus_host=args.prometheus_host,
    )


# -- record ---------------------------------------------------------------------------
def new_recorder(opts):
    """A Recorder for ``opts`` with the exporters they ask for subscribed (Prometheus,
    --log-to): the one place a command builds a recorder."""
    from wattui.exporters.recording import subscribe_exporters
    from wattui.record.recorder import Recorder

    return subscribe_exporters(Recorder(opts))


def cmd_record(args) -> int:
    from wattui.record.recorder import RecordError

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.pid is not None and command:
        raise CliError("give either --pid PID or -- CMD, not both")
    if args.pid is None and not command:
        raise CliError("nothing to record: wattui record -- CMD ARGS...  or  wattui record --pid PID")
    opts = options_from_args(args)
    opts.passthrough = not args.no_passthrough
    if args.detach:
        from wattui.record.options import record_argv

        run = ["--pid", str(args.pid)] if args.pid is not None else ["--", *command]
        return detach([*record_argv(opts, session=False), *run], opts)
    rec = new_recorder(opts)
    try:
        if args.pid is not None:
            return rec.attach(args.pid)
        return rec.launch(command)
    except RecordError as e:
        raise CliError(str(e), e.exit_code) from None


def detach(
    argv: list[str], opts, wait_s: float = 15.0, quiet: bool = False, fail_early: bool = True
) -> int:
    """Start the same recording as a background process in its own session (immune to
    the terminal hanging up), print its session id and return once the run has started.
    The session's folder is made here first (a fresh id if one is taken);
    ``opts.session_id`` is set to it.

    A run that cannot start (``cannot start pythn: No such file or directory``) is a
    CliError naming the reason, with the shell's code (127 not found, 126 not
    executable), unless ``fail_early`` is False (the live screen shows the reason)."""
    import os
    import subprocess
    import time

    from wattui.store.paths import (
        create_file,
        make_private_dir,
        recorder_log_path,
        recorder_logs_dir,
        sessions_dir,
        store_root,
    )
    from wattui.store.reader import CorruptSession, Session
    from wattui.store.schema import META

    root = store_root(opts.store)
    argv = [a for a in argv if a != "--detach"]
    if argv and argv[0] == "record":
        argv = argv[1:]
    argv = _without_session_id(argv)
    logs = recorder_logs_dir(root)
    sid = _reserve_session(root, opts.session_id)
    opts.session_id = sid  # the caller (the live screen) opens this session
    sdir = sessions_dir(root) / sid
    log_path = recorder_log_path(root, sid)
    try:
        make_private_dir(logs)
        log_file = create_file(log_path, append=True)  # 0600: the run's messages
    except OSError as e:
        _release_session(sdir)
        raise CliError(f"cannot use the store {root}: {e.strerror or e}") from None
    try:
        with log_file as log, open(os.devnull, "rb") as devnull:
            # --no-passthrough: the run's output goes to the session's output.log only, not
            # a second time into the recorder's own log.
            proc = subprocess.Popen(
                [sys.executable, "-m", "wattui", "record", "--session-id", sid,
                 "--session-reserved", "--no-passthrough", *argv],
                stdin=devnull,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
    except OSError as e:
        _release_session(sdir)
        raise CliError(f"cannot start the background recorder: {e.strerror or e}") from None
    # The baseline is measured before the run starts: wait for it too.
    deadline = time.monotonic() + wait_s + float(getattr(opts, "baseline_s", 0.0) or 0.0)
    while time.monotonic() < deadline:
        exited = proc.poll() is not None
        session = None
        if (sdir / META).exists():
            try:
                session = Session.open(sdir)
            except CorruptSession:
                session = None  # half written: look again
        if session is not None:
            meta = session.meta
            started = meta.get("pid") is not None or meta.get("status") != "running"
            if started or exited:
                never_ran = meta.get("mode") == "launch" and meta.get("pid") is None
                if fail_early and never_ran and session.status in ("failed", "interrupted"):
                    from wattui.sessions import failure_reason

                    code = meta.get("exit_code")
                    raise CliError(
                        f"{failure_reason(session) or 'the run could not start'} "
                        f"(session {sid}; details: wattui show {sid})",
                        code if code in (exitcodes.NOT_EXECUTABLE, exitcodes.NOT_FOUND) else exitcodes.USAGE,
                    )
                if not quiet:
                    print(sid)
                return 0
        elif exited:
            _release_session(sdir)
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise CliError(f"the background recorder stopped at once: {tail[0]}")
        time.sleep(0.05)
    if (sdir / META).exists():  # the recorder is up; the run is slow to start
        if not quiet:
            print(sid)
        return 0
    raise CliError(f"the background recorder did not start within {wait_s:.0f} s (log: {log_path})")


def _without_session_id(argv: list[str]) -> list[str]:
    """The record options minus --session-id (detach passes the id it reserved)."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--":
            return out + argv[i:]
        if a == "--session-id":
            skip = True
            continue
        if a.startswith("--session-id=") or a == "--session-reserved":
            continue
        out.append(a)
    return out


def _reserve_session(root, given: str | None) -> str:
    """Make the (empty) folder of a new session, so two recorders never share an id."""
    from wattui.record.recorder import ID_ATTEMPTS
    from wattui.store.paths import make_private_dir, new_session_id, sessions_dir

    for _ in range(ID_ATTEMPTS):
        sid = given or new_session_id()
        try:
            make_private_dir(sessions_dir(root) / sid, exist_ok=False)
            return sid
        except FileExistsError:
            if given:
                raise CliError(
                    f"session {sid} already exists in {root}: choose another --session-id"
                ) from None
        except OSError as e:
            raise CliError(f"cannot use the store {root}: {e.strerror or e}") from None
    raise CliError(f"no free session id in {root} after {ID_ATTEMPTS} tries")


def _release_session(sdir) -> None:
    """The recorder never started: remove the folder reserved for it (if still empty)."""
    import contextlib

    with contextlib.suppress(OSError):
        sdir.rmdir()


# -- sessions / show ------------------------------------------------------------------
def _fmt_time(t) -> str:
    import time

    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _method_of(rec: dict) -> str:
    methods = sorted({g["method"] for g in rec["gpus"] + rec["cpu"] if g.get("method")})
    return "+".join(methods) if methods else "none"


def _print_problems(problems: list[str]) -> None:
    from wattui.sanitize import clean_text

    for p in problems:
        print(f"wattui: warning: {clean_text(p)}", file=sys.stderr)


def cmd_sessions(args) -> int:
    from wattui.sessions import list_records
    from wattui.store.paths import store_root

    sam_opts = _sam_opts(args)  # checked before anything is read
    recs, problems = list_records(
        store_root(args.store), as_json=args.format == "json", **sam_opts
    )
    _print_problems(problems)
    if args.format == "json":  # one session a line, as the record cache holds them
        print("[\n" + ",\n".join(recs) + ("\n]" if recs else "]"))
        return 0
    from wattui.format import fmt_energy_precise as format_energy
    from wattui.sessions import command_label

    cols = ["id", "name", "status", "started", "duration_s", "energy", "method", "accuracy", "sam"]
    rows = []
    for r in recs:
        rows.append(
            {
                "id": r["id"],
                "name": r.get("name") or command_label(r.get("command"))[:30],
                "status": r["status"],
                "started": _fmt_time(r["started_at"]),
                "duration_s": f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "",
                "energy": format_energy(r["energy_j"]),
                "method": _method_of(r) + (" SIMULATED" if r["simulated"] and "simulated" not in _method_of(r) else ""),
                "accuracy": f"{r['accuracy']:.4f}" if r.get("accuracy") is not None else "",
                "sam": _fmt_sam(r),
            }
        )
    if args.format == "csv":  # SAM as a number, its unit and flag in columns of their own
        import csv

        for row, r in zip(rows, recs):
            row["sam"] = f"{r['sam']:.4f}" if r.get("sam") is not None else ""
            row["sam_unit"] = r.get("sam_unit") or ""
            row["sam_flag"] = r.get("sam_flag") or ""
        w = csv.DictWriter(sys.stdout, fieldnames=[*cols, "sam_unit", "sam_flag"])
        w.writeheader()
        w.writerows(rows)
        return 0
    if not rows:
        print("no sessions yet: record one with `wattui record -- CMD` or `wattui -- CMD`")
        return 0
    _print_table(cols, rows)
    _sam_footnotes(recs)
    return 0


def _sam_footnotes(recs: list[dict]) -> None:
    """Under a listing: which SAM values the log dominates, and the unit that would do."""
    flagged = [r for r in recs if r.get("sam_flag")]
    undefined = [
        r for r in recs if "sam" in r and r.get("sam") is None and r.get("accuracy") is not None
    ]
    if not flagged and not undefined:
        return
    from wattui.metrics.sam import meaningful_unit

    unit = meaningful_unit([r.get("energy_j") for r in recs if r.get("accuracy") is not None])
    if flagged:
        units = sorted({str(r.get("sam_unit")) for r in flagged})
        print(
            f"* energy under 2 {'/'.join(units)}: SAM is dominated by 1/log10(energy), not by "
            f"accuracy ({len(flagged)} session(s))"
        )
    if undefined:
        print(f"SAM n/a: energy at or below 1 unit ({len(undefined)} session(s))")
    print(f"to compare these sessions meaningfully: --sam-unit {unit}")


def _print_table(cols: list[str], rows: list[dict]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def cmd_show(args) -> int:
    from wattui.format import fmt_energy_precise as format_energy
    from wattui.sanitize import clean_text
    from wattui.sessions import cached_record, session_record
    from wattui.store.paths import store_root
    from wattui.store.reader import find_session

    try:
        s = find_session(store_root(args.store), args.id)
    except LookupError as e:
        raise CliError(str(e)) from None
    sam_opts = _sam_opts(args)
    # the stored record when it is current (no events read), else from the files
    rec = session_record(s, **sam_opts) if sam_opts else cached_record(s)
    _print_problems([f"{s.id}: {p}" for p in rec["problems"]])
    # the record counts the run's measure windows; reading them needs the events and samples
    rec["windows"] = _measure_windows(s) if rec.get("measure_windows", 1) else []
    if args.format == "json":
        print(json.dumps(rec, indent=1))
        return 0
    sim = "  [SIMULATED]" if rec["simulated"] else ""
    print(f"session   {rec['id']}{sim}")
    print(f"name      {rec.get('name') or '-'}")
    print(f"command   {' '.join(rec.get('command') or []) or '-'}")
    print(f"status    {rec['status']}" + (f" (exit {rec['exit_code']})" if rec["exit_code"] is not None else ""))
    if rec.get("reason"):
        print(f"reason    {rec['reason']}")
    print(f"started   {_fmt_time(rec['started_at'])}   ended {_fmt_time(rec['ended_at'])}")
    if rec["duration_s"] is not None:
        print(f"duration  {rec['duration_s']:.1f} s")
    for g in rec["gpus"] + rec["cpu"]:
        mean = f"{g['mean_w']:.1f} W" if g["mean_w"] is not None else "n/a"
        peak = f"{g['peak_w']:.1f} W" if g["peak_w"] is not None else "n/a"
        print(f"  {g['key']:<14} {g['name'][:24]:<24} {format_energy(g['energy_j']):>12}  mean {mean}  peak {peak}  [{g['method']}]")
        if "run_energy_j" in g:
            print(f"  {'':<14} {'of which this run':<24} {format_energy(g['run_energy_j']):>12}  [estimated: SM share, idle shared]")
    print(f"energy    {format_energy(rec['energy_j'])} ({_method_of(rec)})")
    if rec.get("energy_above_idle_j") is not None:
        print(f"above idle {format_energy(rec['energy_above_idle_j'])}")
    for key in ("accuracy", "best_accuracy", "epochs_done"):
        v = rec.get(key)
        if v is not None:
            v = f"{v:.4f}" if key != "epochs_done" and isinstance(v, float) else v
            extra = ""
            if key == "accuracy" and rec.get("accuracy_kind"):
                name = clean_text(rec.get("accuracy_key"), 64)  # a name the run chose
                extra = f" ({rec['accuracy_kind']}, {name})"
            elif key == "epochs_done" and rec.get("total_epochs"):
                extra = f" of {rec['total_epochs']}"
            print(f"{key:<9} {v}{extra}")
    if rec.get("epochs_note"):
        print(f"epochs    {rec['epochs_note']}")
    rej = rec.get("metric_rejections") or {}
    if rej:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(rej.items()))
        print(f"refused   {counts} (metric values not stored as such, per reason)")
    if "sam" in rec:
        params = f"alpha={rec.get('sam_alpha')}, beta={rec.get('sam_beta')}, unit={rec.get('sam_unit')}"
        if rec["sam"] is None:
            print(f"SAM       undefined ({rec.get('sam_undefined_reason')}) [{params}]")
        else:
            print(f"SAM       {rec['sam']:.4f} [{params}]")
            if rec.get("sam_flag"):
                print(f"          near the singularity: {rec['sam_flag']}")
    for w in rec["windows"][:SHOW_WINDOWS]:
        fig = f"{w['energy_j']:.4g} J" if w.get("energy_j") is not None else "n/a"
        dur = f" in {w['duration_s']:.3g} s" if w.get("duration_s") is not None else ""
        tag = "SIMULATED" if w.get("simulated") else "measured in the run"
        rec_j = w.get("recorder_energy_j")
        also = f"; recorder's samples {rec_j:.4g} J [interpolated]" if rec_j is not None else ""
        print(f"block     {w['name']}: {fig}{dur} [{tag}]{also}")
    if len(rec["windows"]) > SHOW_WINDOWS:
        print(f"block     ... {len(rec['windows']) - SHOW_WINDOWS} more (--format json lists all)")
    for n in rec["notes"]:
        print(f"note      {n}")
    return 0


SHOW_WINDOWS = 10


def _measure_windows(session) -> list[dict]:
    """The run's ``wattui.measure()`` windows (``measure`` events), oldest first."""
    from wattui.sanitize import clean_text
    try:
        rows = session.events().to_dicts()
    except Exception:  # noqa: BLE001 - a torn events file must not break `show`
        return []
    out = []
    for r in rows:
        if r.get("kind") != "measure":
            continue
        try:
            v = json.loads(r.get("values_json") or "{}")
        except ValueError:
            continue
        if not isinstance(v, dict):
            continue
        name = v.get("name") if isinstance(v.get("name"), str) else ""
        out.append(
            {
                "name": clean_text(name, 60) or "block",
                "energy_j": v.get("energy_j"),
                "started_at": v.get("started_at"),
                "ended_at": v.get("ended_at"),
                "duration_s": v.get("duration_s"),
                "simulated": bool(v.get("simulated")),
                "gpus": {k[: -len("_energy_j")]: x for k, x in v.items() if k.startswith("gpu") and k.endswith("_energy_j")},
            }
        )
    if out:
        _recorder_energy(session, out)
    return out


def _recorder_energy(session, windows: list[dict]) -> None:
    """Each window's GPU energy as the recorder's samples give it (cumulative energy
    interpolated linearly at the window's edges): ``recorder_energy_j``, a cross-check, and
    the only figure when the script could not read the GPUs itself."""
    import bisect

    try:
        df = session.samples()
        kinds = {d.get("key"): d.get("kind") for d in session.meta.get("devices", [])}
        series: dict[str, tuple[list[float], list[float]]] = {}
        for r in df.select("device", "t_wall", "energy_j").drop_nulls().sort("t_wall").iter_rows():
            if kinds.get(r[0]) == "gpu":
                ts, es = series.setdefault(r[0], ([], []))
                ts.append(r[1])
                es.append(r[2])
    except Exception:  # noqa: BLE001
        return

    def at(ts: list[float], es: list[float], t: float) -> float | None:
        if not ts or t < ts[0] or t > ts[-1]:
            return None
        i = bisect.bisect_left(ts, t)
        if ts[i] == t or i == 0:
            return es[i]
        t0, t1, e0, e1 = ts[i - 1], ts[i], es[i - 1], es[i]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)

    for w in windows:
        t0, t1 = w.get("started_at"), w.get("ended_at")
        if not isinstance(t0, (int, float)) or not isinstance(t1, (int, float)) or not series:
            w["recorder_energy_j"] = None
            continue
        parts = [(at(ts, es, t1), at(ts, es, t0)) for ts, es in series.values()]
        ok = [b - a for b, a in parts if a is not None and b is not None]
        w["recorder_energy_j"] = sum(ok) if ok and len(ok) == len(parts) else None


# -- doctor ---------------------------------------------------------------------------
def _doctor_lines(gpus: list[dict], cpus: list[dict]) -> list[tuple[str, str, str]]:
    lines: list[tuple[str, str, str]] = []
    for g in gpus:
        if not g.get("available"):
            what = "GPU (NVML)" if g.get("index") is None else f"GPU {g['index']}"
            lines.append((what, "unavailable", g.get("message", "")))
            continue
        vis = "" if g.get("visible", True) else " (hidden by CUDA_VISIBLE_DEVICES)"
        lines.append(
            (
                f"GPU {g['index']}",
                "ok",
                f"{g.get('name')}{vis}: energy by {g.get('energy')}, watts {g.get('power')}"
                f" (label from {g.get('power_label_from')}), driver {g.get('driver')}",
            )
        )
        for pr in g.get("problems", []):
            lines.append(("", "n/a", f"{pr['figure']}: {pr['why']}; fix: {pr['fix']}"))
    for c in cpus:
        if not c.get("available"):
            lines.append(("CPU (RAPL)", "unavailable", c.get("why", "")))
            continue
        if not c.get("counted"):
            lines.append((f"RAPL {c['zone']}", "not counted", f"{c.get('name')}: {c.get('why')}"))
        elif c.get("readable"):
            lines.append((f"RAPL {c['zone']}", "ok", f"{c.get('name')}: energy by counter"))
        else:
            fix = f"; fix: {c['fix']}" if c.get("fix") else ""
            lines.append((f"RAPL {c['zone']}", "unavailable", f"{c.get('name')}: {c.get('why')}{fix}"))
    lines.append(("process tree", "ok", "CPU % and memory of the run via psutil"))
    lines.append(("simulated GPUs", "ok", "--simulate [N]: a known power curve, marked SIMULATED"))
    return lines


def cmd_doctor(args) -> int:
    from wattui.sources.nvml import nvml_probe
    from wattui.sources.rapl import rapl_probe

    gpus, cpus = nvml_probe(), rapl_probe(args.rapl_root)
    if args.format == "json":
        print(json.dumps({"gpus": gpus, "cpu": cpus}, indent=1))
        return 0
    lines = _doctor_lines(gpus, cpus)
    w = max(len(a) for a, _, _ in lines)
    for a, b, c in lines:
        print(f"{a:<{w}}  {b:<11}  {c}")
    return 0


# -- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wattui",
        description="Watch what a training run costs in electricity, and whether the accuracy it buys is worth it.",
        epilog="Launch and watch: wattui -- python train.py   |   headless: wattui record -- python train.py",
    )
    p.add_argument("--version", action="version", version=f"wattui {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    r = sub.add_parser("record", help="record a run headless (launch with -- CMD, or --pid PID)")
    add_record_options(r)
    r.add_argument("--pid", type=int, help="follow a running process and its descendants")
    r.add_argument("--detach", action="store_true", help="record in the background; print the session id")
    r.add_argument("--no-passthrough", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    r.set_defaults(func=cmd_record, argv=None)

    s = sub.add_parser("sessions", help="list recorded sessions")
    _add_store(s)
    s.add_argument("--format", choices=("table", "json", "csv"), default="table")
    _add_sam(s)
    s.set_defaults(func=cmd_sessions)

    sh = sub.add_parser("show", help="show one session")
    _add_store(sh)
    sh.add_argument("id", nargs="?", default=None, help="session id or unique prefix (default: newest)")
    sh.add_argument("--format", choices=("text", "json"), default="text")
    _add_sam(sh)
    sh.set_defaults(func=cmd_show)

    d = sub.add_parser("doctor", help="what this machine can measure, and how to fix what it cannot")
    d.add_argument("--format", choices=("text", "json"), default="text")
    d.add_argument("--rapl-root", default="/sys/class/powercap", help=argparse.SUPPRESS)
    d.set_defaults(func=cmd_doctor)

    for name, helptext in (
        ("estimate", "estimate a model's energy from its architecture (needs torch)"),
        ("calibrate", "fit energy predictors on this machine's hardware (needs torch)"),
    ):
        # Listed here for --help; main() hands their arguments to wattui.estimate.cli.
        sub.add_parser(name, help=helptext, add_help=False)

    _extend_parser(sub)
    return p


# Modules that add their own subcommands with a ``register(sub)`` function. They are
# imported only to build the parser, and each keeps its heavy imports inside its commands.
COMMAND_MODULES = (
    "wattui.tui.commands",  # run (wattui -- CMD), attach, view
    "wattui.metrics.commands",  # project
    "wattui.compare_commands",  # compare, tag, rm, rename
    "wattui.demo",  # demo
    "wattui.exporters.commands",  # serve
)


def _extend_parser(sub) -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            if not (e.name and name.startswith(e.name)):  # present, but a need is missing
                raise
            continue
        mod.register(sub)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = ["run", *argv]  # `wattui -- CMD`: launch and watch
    elif argv and argv[0] not in ("-h", "--help") and argv[0].startswith("--") and "--" in argv:
        argv = ["run", *argv]  # `wattui --simulate -- CMD`
    if argv and argv[0] in ("estimate", "calibrate"):
        # They parse their own options (argparse's REMAINDER would swallow none that
        # start with '-', such as --help or --input-shape first).
        from wattui.estimate import cli as est

        fn = est.run_estimate if argv[0] == "estimate" else est.run_calibrate
        return int(fn(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if getattr(args, "cmd", None) == "record":
        args.argv = argv
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        from wattui.sanitize import clean_text

        print(f"wattui: error: {clean_text(str(e))}", file=sys.stderr)  # may quote a path
        return e.code
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
