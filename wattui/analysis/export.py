"""The comparison table as text: Markdown, CSV, JSON and LaTeX, each stating SAM's
alpha, beta and unit, the energy method of each row, and which rows are SIMULATED."""

from __future__ import annotations

import csv
import io
import json

import polars as pl

from wattui.analysis.columns import COLUMNS
from wattui.analysis.frame import FRAME_SCHEMA
from wattui.analysis.params import SamParams, sam_label
from wattui.metrics.sam import meaningful_unit

FORMATS = ("md", "csv", "json", "latex")


def _caption(params: SamParams, df: pl.DataFrame) -> str:
    sim = int(df["simulated"].sum()) if df.height else 0
    s = (
        f"{params.formula()}. Energy: all measured devices, method per row "
        "(counter | integrated | simulated | estimated). Rank: by SAM, 1 = best; "
        "SAM n/a where undefined (energy <= 1 unit or no accuracy)."
    )
    flagged = [r for r in df.to_dicts() if r.get("sam_flag")] if df.height else []
    if flagged:
        unit = meaningful_unit(df["energy_j"].to_list())
        s += (
            f" SAM* ({len(flagged)} row(s)): energy under 2 {params.unit}, where 1/log10(energy)"
            f" dominates SAM; a meaningful comparison needs --sam-unit {unit}."
        )
    if sim:
        s += f" {sim} row(s) marked [SIM] are SIMULATED GPUs, not measurements."
    return s


def _machine_row(r: dict, params: SamParams) -> dict:
    return {
        "id": r["id"],
        "kind": r["kind"],
        "nodes": r["node_count"],
        "name": r["name"],
        "tags": r["tag_list"],
        "host": r["host"],
        "gpus": r["gpus"],
        "gpu_count": r["gpu_count"],
        "started_at_utc": r["start"],
        "started_at": r["started_at"],
        "duration_s": r["duration_s"],
        "energy_j": r["energy_j"],
        "energy_kwh": None if r["energy_j"] is None else r["energy_j"] / 3.6e6,
        "energy_method": r["method"],
        "mean_w": r["mean_w"],
        "peak_w_per_gpu": r["peak_w"],
        "accuracy": r["accuracy"],
        "best_accuracy": r["best_accuracy"],
        "sam": r["sam"],
        "sam_undefined_reason": r["sam_reason"],
        "sam_near_singularity": r.get("sam_flag"),
        "sam_rank": r["sam_rank"],
        "sam_alpha": params.alpha,
        "sam_beta": params.beta,
        "sam_unit": params.unit,
        "pareto": r["pareto"],
        "projected_energy_j": r["projected_energy_j"],
        "co2_g": r["co2_g"],
        "cost": r["cost"],
        "currency": r["currency"],
        "status": r["status"],
        "simulated": r["simulated"],
    }


def _tex(s: str) -> str:
    rep = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "×": r"$\times$",
    }
    return "".join(rep.get(ch, ch) for ch in s)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def export(df: pl.DataFrame, fmt: str, params: SamParams, problems: list[str] = ()) -> str:
    """The table as ``md``, ``csv``, ``json`` or ``latex`` text, alpha/beta/unit stated."""
    rows = df.to_dicts()
    if fmt in ("csv", "json"):
        mrows = [_machine_row(r, params) for r in rows]
        if fmt == "json":
            doc = {
                "sam": {
                    "alpha": params.alpha,
                    "beta": params.beta,
                    "unit": params.unit,
                    "formula": params.formula(),
                },
                "caption": _caption(params, df),
                "problems": list(problems),
                "sessions": mrows,
            }
            return json.dumps(doc, indent=1) + "\n"
        buf = io.StringIO()
        fields = list(
            _machine_row(
                {k: None for k in FRAME_SCHEMA}
                | {"tag_list": [], "sam_rank": None, "pareto": None},
                params,
            )
        )
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in mrows:
            r = dict(r, tags=";".join(r["tags"]))
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return buf.getvalue()
    labels = [c.label if c.key != "sam" else sam_label(params, fmt == "md") for c in COLUMNS]
    cells = [[c.fmt(r) for c in COLUMNS] for r in rows]
    if fmt == "md":
        lines = [f"Table: {_caption(params, df)}", ""]
        lines.append("| " + " | ".join(_md(x) for x in labels) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in COLUMNS) + "|")
        for row in cells:
            lines.append("| " + " | ".join(_md(x) for x in row) + " |")
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        labels = [
            f"SAM ($\\alpha$={params.alpha:g}, $\\beta$={params.beta:g}, {params.unit})"
            if c.key == "sam"
            else _tex(c.label)
            for c in COLUMNS
        ]
        spec = "".join("r" if c.numeric else "l" for c in COLUMNS)
        lines = [
            "% generated by wattui compare --format latex; needs \\usepackage{booktabs}",
            "\\begin{table}[t]",
            "\\centering",
            "\\caption{" + _tex(_caption(params, df)) + "}",
            "\\resizebox{\\linewidth}{!}{%",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(labels) + " \\\\",
            "\\midrule",
        ]
        for row in cells:
            lines.append(" & ".join(_tex(x) for x in row) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table}"]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
