"""``wattui export``: sessions to CodeCarbon's emissions.csv, MLflow, Weights & Biases or
TensorBoard."""

from __future__ import annotations

import sys

from wattui.cli.common import CliError


def add_parser(sub, common) -> None:
    from wattui.metrics.sam import alpha_arg, beta_arg, unit_arg
    from wattui.record.options import country_arg, number_arg

    p = sub.add_parser(
        "export",
        help="sessions to CodeCarbon's emissions.csv, MLflow, Weights & Biases or TensorBoard",
        description=(
            "Export recorded sessions where users already look: a CodeCarbon-compatible "
            "emissions.csv (one row per session), or per-epoch energy, power, accuracy and SAM "
            "to MLflow, Weights & Biases or TensorBoard (each needs its library installed)."
        ),
    )
    p.add_argument("ids", nargs="*", help="session ids, prefixes or names (default: the newest); 'all' for every session")
    p.add_argument("--to", required=True, choices=("codecarbon", "mlflow", "wandb", "tensorboard"))
    p.add_argument("--output", "-o", metavar="PATH", help="codecarbon: the CSV (default emissions.csv, appended to); tensorboard: the log directory (default runs/)")
    p.add_argument("--project", help="CodeCarbon project_name, W&B project, MLflow experiment (default: the session's name, wattui, wattui)")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: MLflow's own, $MLFLOW_TRACKING_URI)")
    p.add_argument("--wandb-mode", choices=("online", "offline"), help="W&B mode (default: W&B's own, $WANDB_MODE)")
    p.add_argument("--wandb-dir", metavar="DIR", help="where W&B writes its run files")
    p.add_argument("--accuracy-key", metavar="NAME", help="the reported metric taken as accuracy")
    p.add_argument("--alpha", "--sam-alpha", dest="sam_alpha", type=alpha_arg, metavar="A", help="SAM's alpha (default: as recorded, 5)")
    p.add_argument("--beta", "--sam-beta", dest="sam_beta", type=beta_arg, metavar="B", help="SAM's beta (default: as recorded, 5)")
    p.add_argument("--sam-unit", type=unit_arg, metavar="kWh|Wh|J", help="SAM's electricity unit (default: as recorded, kWh)")
    p.add_argument("--carbon-intensity", dest="carbon_g_per_kwh", type=number_arg(0, 5000, "--carbon-intensity"), metavar="G_PER_KWH", help="grams CO2 per kWh, for emissions")
    p.add_argument("--country", type=country_arg, metavar="ISO3", help="that country's average carbon intensity, for emissions")
    common.store(p)


def _sessions(args) -> list:
    from wattui.store.paths import store_root
    from wattui.store.reader import find_session, list_sessions

    root = store_root(args.store)
    if args.ids == ["all"]:
        sessions, _ = list_sessions(root)
        if not sessions:
            raise CliError(f"no sessions in {root}")
        return sessions
    try:
        return [find_session(root, ref) for ref in (args.ids or [None])]
    except LookupError as e:
        raise CliError(str(e)) from None


def run(args) -> int:
    from wattui.sessions import session_record

    opts = {
        k: getattr(args, k)
        for k in ("accuracy_key", "sam_alpha", "sam_beta", "sam_unit", "carbon_g_per_kwh", "country")
        if getattr(args, k) is not None
    }
    sessions = _sessions(args)
    records = [(s, session_record(s, **opts)) for s in sessions]
    sim = sum(1 for _, r in records if r.get("simulated"))
    if args.to == "codecarbon":
        from pathlib import Path

        from wattui.exporters.codecarbon_csv import CsvExportError, row_for, write_rows

        out = Path(args.output or "emissions.csv")
        try:
            how = write_rows(out, [row_for(r, s.meta, args.project, args.country) for s, r in records])
        except CsvExportError as e:
            raise CliError(str(e)) from None
        print(f"wattui: {how} {out}: {len(records)} session(s) as CodeCarbon rows", file=sys.stderr)
        if not any(r.get("co2_g") is not None for _, r in records):
            print("wattui: emissions left empty: no carbon intensity (give --country or --carbon-intensity)", file=sys.stderr)
    else:
        from wattui.exporters import trackers

        for s, r in records:
            try:
                rows = s.events().to_dicts()
                points = trackers.epoch_series(
                    rows, r.get("started_at"), alpha=r["sam_alpha"], beta=r["sam_beta"],
                    unit=r["sam_unit"], accuracy_key=args.accuracy_key,
                )
                sink = trackers.make_sink(
                    args.to, tracking_uri=args.tracking_uri, project=args.project,
                    mode=args.wandb_mode, directory=args.wandb_dir, logdir=args.output,
                )
                ref = trackers.export_session(sink, r, points)
            except trackers.TrackerError as e:
                from wattui import exitcodes

                raise CliError(str(e), exitcodes.MISSING_DEPENDENCY) from None
            except Exception as e:  # noqa: BLE001 - the tracker library's own error, in one line
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                raise CliError(f"{args.to} refused the export of {r['id']}: {first}") from None
            print(f"wattui: {r['id']} -> {args.to} {ref}: {len(points)} epoch point(s)", file=sys.stderr)
    if sim:
        print(f"wattui: {sim} of {len(records)} session(s) measured SIMULATED GPUs", file=sys.stderr)
    return 0
