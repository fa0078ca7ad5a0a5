"""Refit every predictor set from the shipped Getzner data, write the JSON files and the
tables in ``docs/estimation.md``. Run as ``python scripts/fit_predictors.py``."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from wattui.estimate import archeval, fit, opsets, seed_data
from wattui.estimate.predictors import SHIPPED, PredictorSet

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "estimation.md"
PUBLISHED_R2 = {"conv2d": 0.9977, "maxpool2d": 0.9995, "linear": 0.9992, "relu": 0.9812,
                "sigmoid": 0.9905, "tanh": 0.9761, "softmax": 0.9913}
PUBLISHED_WHOLE_R2 = 0.352
RECIPES = {
    "shipped": ("getzner-xeon-cpu", "overhead + MACs x per-MAC cost(config), relative loss"),
    "seed": ("getzner-seed-method", "Getzner et al. recipe: linear-scale regression"),
    "loglog": ("getzner-loglog", "log E = a + b log MACs (not shipped)"),
}
BEGIN, END = "<!-- BEGIN fit-tables (scripts/fit_predictors.py) -->", "<!-- END fit-tables -->"


def fit_recipe(recipe: str, data_path=None, date: str | None = None) -> PredictorSet:
    models, scores = {}, {}
    for kind in fit.KINDS:
        models[kind], scores[kind] = fit.fit_kind(recipe, kind, data_path)
    name, how = RECIPES[recipe]
    prov = {
        "dataset": seed_data.DATASET,
        "data_files": "wattui/data/getzner/layers_*.csv",
        "device": seed_data.DEVICE,
        "cache_bytes": seed_data.CACHE_BYTES,
        "cache_source": seed_data.CACHE_SOURCE,
        "measured": "CodeCarbon 2.1.3 over RAPL, CPU package energy, idle NOT subtracted, "
                    "~30 s windows of repeated forward passes (eval mode, no_grad)",
        "recipe": how,
        "fit_date": date or dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "fit_command": "python scripts/fit_predictors.py",
        "attribution": "data by Johannes Getzner, TU Munich (DAML); MIT, see "
                       "wattui/data/getzner/LICENSE-MIT and PROVENANCE.md",
    }
    return PredictorSet(name, "Intel Xeon Gold 5120 CPU (getzner data)", "inference",
                        models, prov)


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def op_table(here: PredictorSet, k: float) -> list[str]:
    """The op-kind predictors fitted on this project's time calibration."""
    out = [f"### Op-kind predictors ({here.name}, seconds; transferred into "
           f"getzner-xeon-cpu x k = {k:.3g} J/s)", "",
           "Fitted on random configurations only; form chosen by 5-fold cross-validation "
           "(power `a + b X^c`; rate `c0 + X (c1 + Σ ci log p_i)`; roofline `c0 + c1 MACs + "
           "c2 bytes`; cache: the same plus bytes past the last-level cache).", "",
           "| op kind | rows | form | CV median / mean rel. err |", "|---|---|---|---|"]
    for kind, m in sorted(here.models.items()):
        cv = m.info["cv"]
        out.append(f"| {kind} | {m.info['rows']} | {cv.get('form', 'power')} | "
                   f"{_pct(cv['median_rel_err'])} / {_pct(cv['mean_rel_err'])} |")
    return out + [""]


def tables(sets: dict[str, PredictorSet], whole: dict, layers: dict,
           here: PredictorSet | None = None, k: float = 0.0) -> str:
    s, seed, ll = sets["shipped"], sets["seed"], sets["loglog"]
    out = (op_table(here, k) if here else []) + ["### Reproduction: per-layer R² on random configurations", "",
           "Test part of a 70/20/10 split; mean over 10 random splits (split 0 alone in "
           "brackets). Median relative error on the same test parts.", "",
           "| layer | published R² | seed recipe R² (ours) | seed median rel. err | "
           "log-log median rel. err | shipped R² | shipped median rel. err |",
           "|---|---|---|---|---|---|---|"]
    for kind in fit.KINDS:
        a, b, c = (x.models[kind].info["test"] for x in (seed, ll, s))
        out.append(f"| {kind} | {PUBLISHED_R2[kind]} | {a['r2_test']:.4f} "
                   f"({a['r2_test_split0']:.4f}) | {_pct(a['median_rel_err'])} | "
                   f"{_pct(b['median_rel_err'])} | {c['r2_test']:.4f} | "
                   f"{_pct(c['median_rel_err'])} |")
    out += ["", "### Whole architectures (measured layer_idx=0, all runs)", "",
            f"Published R² over AlexNet/VGG11/13/16: {PUBLISHED_WHOLE_R2}. VGG16 rows are not "
            "in our copy of the data.", "",
            "| architecture | n | seed recipe median / mean rel. err | log-log median / mean | "
            "shipped median / mean | shipped signed median |", "|---|---|---|---|---|---|"]
    for arch in archeval.ARCHS:
        a, b, c = whole["seed"][arch], whole["loglog"][arch], whole["shipped"][arch]
        out.append(f"| {arch} | {c['n']} | {_pct(a['median_rel_err'])} / "
                   f"{_pct(a['mean_rel_err'])} | {_pct(b['median_rel_err'])} / "
                   f"{_pct(b['mean_rel_err'])} | {_pct(c['median_rel_err'])} / "
                   f"{_pct(c['mean_rel_err'])} | {_pct(c['median_signed_rel_err'])} |")
    out.append(f"| pooled R² | | {whole['seed']['pooled_r2']:.3f} | "
               f"{whole['loglog']['pooled_r2']:.3f} | {whole['shipped']['pooled_r2']:.3f} | |")
    out += ["", "### Layers measured inside the architectures", "",
            "| layer | n | seed recipe median / mean rel. err | log-log | shipped |",
            "|---|---|---|---|---|"]
    for t in layers["shipped"]:
        a, b, c = (layers[r][t] for r in ("seed", "loglog", "shipped"))
        out.append(f"| {t} | {c['n']} | {_pct(a['median_rel_err'])} / {_pct(a['mean_rel_err'])}"
                   f" | {_pct(b['median_rel_err'])} / {_pct(b['mean_rel_err'])} | "
                   f"{_pct(c['median_rel_err'])} / {_pct(c['mean_rel_err'])} |")
    return "\n".join(out)


def write_docs(text: str, path: Path = DOCS) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    doc = path.read_text() if path.exists() else f"# Estimation\n\n{block}\n"
    if BEGIN in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, doc,
                     flags=re.S)
    else:
        doc += f"\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fit_predictors", description=__doc__)
    ap.add_argument("--data", help="folder with layers_*.csv and architectures.csv "
                    "(default: wattui/data/getzner)")
    ap.add_argument("--out-dir", help="where to write the predictor JSON files "
                    "(default: the package, i.e. the shipped files)")
    ap.add_argument("--docs", help="markdown file whose tables to regenerate "
                    f"(default {DOCS}); 'none' to skip")
    ap.add_argument("--date", help="fit date to record (default: today, UTC)")
    args = ap.parse_args(argv)
    try:
        seed_data.data_dir(args.data)
    except FileNotFoundError as exc:
        print(f"fit_predictors: {exc}", file=sys.stderr)
        return 2
    sets = {r: fit_recipe(r, args.data, args.date) for r in RECIPES}
    date = args.date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    rows = opsets.load_rows()
    here = opsets.time_set(rows, date)
    k = opsets.transfer(sets["shipped"], here, rows)
    path = Path(args.out_dir) / SHIPPED[here.name].name if args.out_dir else SHIPPED[here.name]
    here.save(path)
    print(f"wrote {path}")
    cache: dict = {}
    whole = {r: archeval.whole_model(s, args.data, cache) for r, s in sets.items()}
    layers = {r: archeval.layers_in_architectures(s, args.data, cache) for r, s in sets.items()}
    for r in ("shipped", "seed"):
        sets[r].provenance["architectures"] = {
            a: {k: round(v, 4) for k, v in whole[r][a].items() if k != "n"}
            for a in archeval.ARCHS}
        name = RECIPES[r][0]
        path = Path(args.out_dir) / SHIPPED[name].name if args.out_dir else SHIPPED[name]
        sets[r].save(path)
        print(f"wrote {path}")
    text = tables(sets, whole, layers, here, k)
    if args.docs != "none":
        write_docs(text, Path(args.docs) if args.docs else DOCS)
        print(f"updated tables in {args.docs or DOCS}")
    print(text)
    return 0
