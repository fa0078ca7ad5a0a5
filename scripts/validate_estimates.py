"""Validate `wattui estimate` on held-out architectures against measured CPU time.

    python scripts/validate_estimates.py [--models a,b] [--reps 7] [--docs PATH|none]

Measures each model of wattui/estimate/heldout.py single-threaded (median process CPU time
per forward pass, batch 8), estimates it with the shipped sets, and writes the table into
docs/estimation.md between the validation markers. Takes a few minutes; the machine's load
average is recorded with the table because a shared machine inflates the times.
"""

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wattui.estimate import heldout, pages, validation  # noqa: E402
from wattui.estimate.predictors import resolve  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "estimation.md"
BEGIN = "<!-- BEGIN validation-table{} (scripts/validate_estimates.py) -->"
END = "<!-- END validation-table{} -->"
SETS = ("getzner-xeon-cpu", "amd-epyc-cpu-time")
NOTES = {"vgg11": "VGG family (the shipped form was chosen on VGG11/13)",
         "vgg16": "VGG family, never fitted on"}


def table(res: dict) -> str:
    (l0, l1) = res["load"]
    what = ("eval + no_grad forward passes" if res.get("mode", "inference") == "inference"
            else "training steps (train mode, forward + `sum()` + backward, no optimizer)")
    lines = [f"Measured {res.get('when', '?')} UTC, batch "
             f"{res['batch']}, `torch.set_num_threads(1)`, {what}, one warm-up, "
             f"median process CPU time of up to 7. Load average (1/5/15 min) "
             f"{l0[0]:.1f}/{l0[1]:.1f}/{l0[2]:.1f} before, {l1[0]:.1f}/{l1[1]:.1f}/"
             f"{l1[2]:.1f} after, on 2 shared cores. Normalised = (estimate / measured) / "
             f"geometric mean of the same over the dense references "
             f"({', '.join(res['dense'])}); 1.00 is right, the target is 0.67-1.5.", "",
             "| model | measured ms (reps, spread) | " + " | ".join(
                 f"{s}: estimate | normalised" for s in res["sets"]) + " | note |",
             "|---|---|" + "---|---|" * len(res["sets"]) + "---|"]
    for name, row in res["models"].items():
        cells = [name, f"{1e3 * row['measured_s']:.1f} ({row['reps']}, "
                       f"{100 * row['spread']:.0f}%)"]
        for s in res["sets"]:
            unit = "J" if s.startswith("getzner") else "s"
            est = row["estimates"][s]
            flag = " (partial)" if row["partial"][s] else ""
            shown = f"{est:.3g} J" if unit == "J" else f"{1e3 * est:.1f} ms"
            cells += [shown + flag, f"{row['normalised'][s]:.2f}"]
        dense = "dense reference" if name in res["dense"] else NOTES.get(name, "held out")
        cells.append(dense)
        lines.append("| " + " | ".join(cells) + " |")
    worst = {s: max(max(r["normalised"][s], 1 / r["normalised"][s])
                    for r in res["models"].values()) for s in res["sets"]}
    lines += ["", "Worst factor off (max of ratio and 1/ratio): " + ", ".join(
        f"{s} {w:.2f}x" for s, w in worst.items()) + "."]
    return "\n".join(lines)


def write_docs(text: str, path: Path, mode: str) -> None:
    tag = "" if mode == "inference" else "-training"
    begin, end = BEGIN.format(tag), END.format(tag)
    block = f"{begin}\n{text}\n{end}"
    doc = path.read_text()
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, doc,
                     flags=re.S)
    else:
        doc += f"\n{block}\n"
    path.write_text(doc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(heldout.MODELS))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--sets", default=",".join(SETS), help="predictor sets to compare")
    ap.add_argument("--mode", choices=("inference", "training"), default="inference")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--docs", default=str(DOCS), help="markdown file to update, or 'none'")
    ap.add_argument("--save", metavar="JSON", help="also write the raw results here")
    ap.add_argument("--reuse", metavar="JSON", help="take the measurements from a saved run "
                    "(re-estimate only)")
    ap.add_argument("--page-fault-cost", type=float, metavar="SECONDS",
                    help="price fresh pages at this CPU time per page (wattui/estimate/"
                    "pages.py; scripts/fresh_pages.py --fault-cost measures it)")
    ns = ap.parse_args(argv)
    names = [n for n in ns.models.split(",") if n]
    bad = [n for n in names if n not in heldout.MODELS]
    if bad:
        print(f"validate_estimates: unknown model(s) {', '.join(bad)}", file=sys.stderr)
        return 2
    psets = [resolve(s) for s in ns.sets.split(",") if s]
    if ns.page_fault_cost:
        psets = [pages.with_fault_cost(p, ns.page_fault_cost, "this machine") or p
                 for p in psets]

    def progress(name, row):
        print(f"{name}: {1e3 * row['measured_s']:.1f} ms", file=sys.stderr, flush=True)

    old = json.loads(Path(ns.reuse).read_text()) if ns.reuse else None
    res = validation.run(names, psets, ns.batch, ns.reps, progress, old, ns.mode)
    res["when"] = old.get("when", "?") if old else \
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}"
    if ns.save:
        Path(ns.save).write_text(json.dumps(res, indent=1))
    text = table(res)
    print(text)
    if ns.docs != "none":
        write_docs(text, Path(ns.docs), ns.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
