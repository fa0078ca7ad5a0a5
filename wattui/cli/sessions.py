"""``wattui sessions`` and ``wattui show``: list recorded sessions, inspect one."""

from __future__ import annotations

import json
import sys

from wattui.analysis.measure_windows import measure_windows
from wattui.cli.common import CliError, sam_opts
from wattui.format import fmt_local_time, fmt_sam_record
from wattui.model.kinds import join_methods


def add_parser(sub, common) -> None:
    s = sub.add_parser("sessions", help="list recorded sessions")
    common.store(s)
    s.add_argument("--format", choices=("table", "json", "csv"), default="table")
    common.sam(s)

    sh = sub.add_parser("show", help="show one session")
    common.store(sh)
    sh.add_argument("id", nargs="?", default=None, help="session id or unique prefix (default: newest)")
    sh.add_argument("--format", choices=("text", "json"), default="text")
    common.sam(sh)


def run(args) -> int:
    return cmd_sessions(args) if args.cmd == "sessions" else cmd_show(args)


def _method_of(rec: dict) -> str:
    return join_methods(g.get("method") for g in rec["gpus"] + rec["cpu"]) or "none"


def _print_problems(problems: list[str]) -> None:
    from wattui.sanitize import clean_text

    for p in problems:
        print(f"wattui: warning: {clean_text(p)}", file=sys.stderr)


def cmd_sessions(args) -> int:
    from wattui.sessions import list_records
    from wattui.store.paths import store_root

    sam = sam_opts(args)  # checked before anything is read
    recs, problems = list_records(
        store_root(args.store), as_json=args.format == "json", **sam
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
                "started": fmt_local_time(r["started_at"]),
                "duration_s": f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "",
                "energy": format_energy(r["energy_j"]),
                "method": _method_of(r) + (" SIMULATED" if r["simulated"] and "simulated" not in _method_of(r) else ""),
                "accuracy": f"{r['accuracy']:.4f}" if r.get("accuracy") is not None else "",
                "sam": fmt_sam_record(r),
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
    sam = sam_opts(args)
    # the stored record when it is current (no events read), else from the files
    rec = session_record(s, **sam) if sam else cached_record(s)
    _print_problems([f"{s.id}: {p}" for p in rec["problems"]])
    # the record counts the run's measure windows; reading them needs the events and samples
    rec["windows"] = measure_windows(s) if rec.get("measure_windows", 1) else []
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
    print(f"started   {fmt_local_time(rec['started_at'])}   ended {fmt_local_time(rec['ended_at'])}")
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
