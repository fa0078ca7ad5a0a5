"""``wattui project``: a session's projected final electricity, SAM, CO2 and cost.

Reads only the stored events (epoch ends with their energy, reported accuracies), so it
works on a running session as well as a finished one, under any alpha, beta, unit, carbon
intensity or price.
"""

from __future__ import annotations

import argparse
import json
import math

from wattui.cli.common import CliError
from wattui.format import fmt_energy, fmt_local_time

__all__ = ["add_parser", "run"]


def run(args) -> int:
    from wattui.metrics.projection import energy_to_target_detail
    from wattui.metrics.sam import SamResult, format_sam
    from wattui.metrics.session_metrics import accuracy_points, metrics_from_rows
    from wattui.record.options import metric_options_from_args
    from wattui.sessions import session_record
    from wattui.store.paths import store_root
    from wattui.store.reader import find_session

    try:
        s = find_session(store_root(args.store), args.id)
    except LookupError as e:
        raise CliError(str(e)) from None
    rec = session_record(s, metrics=False)
    try:
        ev = s.events()
        rows = ev.to_dicts() if hasattr(ev, "to_dicts") else list(ev)
    except Exception as e:  # noqa: BLE001
        raise CliError(f"cannot read the events of {s.id}: {e}") from None
    opts = metric_options_from_args(args).given()
    stored = (
        s.meta.get("metric_settings") if isinstance(s.meta.get("metric_settings"), dict) else {}
    )
    try:
        m = metrics_from_rows(rows, rec.get("energy_j"), rec.get("started_at"), stored, **opts)
    except ValueError as e:
        raise CliError(str(e)) from None
    target = None
    if args.target is not None:
        d = energy_to_target_detail(accuracy_points(rows), args.target)
        target = {
            "target": args.target,
            "energy_j": d.energy_j,
            "reason": d.reason,
            "measured": d.measured,
        }
    if args.format == "json":
        out = {
            "id": s.id,
            "simulated": rec.get("simulated"),
            "energy_j": rec.get("energy_j"),
            **m,
            "energy_to_target": target,
        }
        out = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }
        print(json.dumps(out, indent=1))
        return 0
    sim = "  [SIMULATED]" if rec.get("simulated") else ""
    print(f"session    {s.id}{sim}")
    print(f"energy     {fmt_energy(rec.get('energy_j'))} so far")
    done, total = m.get("epochs_done"), m.get("total_epochs")
    print(f"epochs     {done if done is not None else '?'} of {total or '?'}")
    if m.get("projected_energy_j") is not None:
        print(
            f"projected  {fmt_energy(m['projected_energy_j'])} "
            f"(95% band {fmt_energy(m['projected_energy_low_j'])} .. "
            f"{fmt_energy(m['projected_energy_high_j'])})"
        )
        print(
            f"per epoch  {fmt_energy(m.get('projected_per_epoch_j'))}, "
            f"{(m.get('projected_per_epoch_s') or float('nan')):.1f} s"
        )
        if m.get("projected_end_time"):
            print(f"ends       {fmt_local_time(m['projected_end_time'], 'n/a')}")
    print(f"method     {m.get('projection_note') or '-'}")
    for label, val_key, why_key in (
        ("SAM now", "sam", "sam_undefined_reason"),
        ("SAM final", "projected_sam", "projected_sam_undefined_reason"),
    ):
        r = SamResult(
            m.get(val_key),
            m.get(why_key) or "no projection",
            m["sam_alpha"],
            m["sam_beta"],
            m["sam_unit"],
        )
        print(f"{label:<10} {format_sam(r)}")
    if m.get("co2_g") is not None:
        proj = m.get("projected_co2_g")
        extra = f", projected {proj:.3g} g" if proj is not None else ""
        print(f"CO2        {m['co2_g']:.3g} g{extra}  ({m.get('carbon_source')}, PUE {m['pue']:g})")
    if m.get("cost") is not None:
        proj = m.get("projected_cost")
        extra = f", projected {proj:.3g}" if proj is not None else ""
        print(f"cost       {m['cost']:.3g} {m.get('currency')}{extra}")
    if target is not None:
        if target["energy_j"] is None:
            print(f"to {args.target:g}   n/a: {target['reason']}")
        else:
            how = "measured" if target["measured"] else "fitted a - b*exp(-c*E)"
            print(f"to {args.target:g}   {fmt_energy(target['energy_j'])} ({how})")
    return 0


def _target_arg(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--target takes an accuracy, not {value!r}") from None
    if 1 < x <= 100:
        x /= 100
    if not (math.isfinite(x) and 0 < x <= 1):
        raise argparse.ArgumentTypeError(f"--target must be a fraction or percentage: {value!r}")
    return x


def add_parser(sub, common) -> None:
    from wattui.record.options import add_metric_options

    p = sub.add_parser(
        "project",
        help="project a session's final electricity, SAM, CO2 and cost from its first epochs",
        description="Electricity grows linearly with epochs and with the data fraction "
        "(Gowda et al.): the final figure is projected from the epochs done, leaving a "
        "warm-up epoch out, with a 95% band.",
    )
    common.store(p)
    p.add_argument("id", nargs="?", default=None, help="session id, prefix or name (newest)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--target", type=_target_arg, metavar="ACC", help="also estimate energy to reach ACC"
    )
    add_metric_options(p)
