"""Check the fresh-page rule (wattui/estimate/pages.py) by counting: predicted page faults per
pass against measured minor faults (getrusage), and measure the cost of one fresh page.

    python scripts/fresh_pages.py [--models a,b] [--mode inference|training]
        [--random docs/validation/random_archs_seed6.json ...] [--fault-cost] [--save JSON]

Held-out models: each measured in a fresh process (build, one warm-up pass, 3 passes;
single-threaded, batch 8), predicted by replaying its traced allocations through the rule
from a fresh allocator. Random architectures: the minor faults that
scripts/validate_random_archs.py recorded (one process, the dense references first, then the
nets in order, one warm-up and 5 passes each), predicted by replaying the same sequence
through one allocator. This is a count, so it tests the rule; nothing is fitted.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from wattui.estimate import heldout, pages, trace, validation  # noqa: E402


def events(model, shape, batch, mode="inference"):
    import torch

    log = trace.StorageLog()
    if isinstance(shape, torch.Tensor):
        trace.trace_model(model, shape, None, training=mode == "training", storage=log)
    else:
        trace.trace_model(model, shape, batch, training=mode == "training", storage=log)
    return log.events, log.before


def heldout_events(name, batch, mode="inference"):
    import torch

    _, shape, dtype, _ = heldout.MODELS[name]
    model = validation.build(name, "meta")
    if dtype == "int64":
        shape = torch.zeros((batch, *shape), dtype=torch.long)
    return events(model, shape, batch, mode)


def measure_one(name, batch, mode) -> dict:
    """Minor faults and CPU time per pass of one model, in this (fresh) process."""
    import resource

    import torch

    torch.set_num_threads(1)
    model = validation.build(name).train(mode == "training")
    x = validation.example(name, batch)
    step = validation.pass_fn(model, x, mode)

    with torch.set_grad_enabled(mode == "training"):
        step()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(3):
            step()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / 3
    return {"minor_faults": (r1.ru_minflt - r0.ru_minflt) / 3, "cpu_s": cpu,
            "kernel_share": (r1.ru_stime - r0.ru_stime) / 3 / max(cpu, 1e-9)}


def heldout_counts(names, batch, mode) -> dict:
    out = {}
    for name in names:
        run = subprocess.run([sys.executable, __file__, "--measure-one", name, "--mode", mode,
                              "--batch", str(batch)], capture_output=True, text=True,
                             check=True)
        row = json.loads(run.stdout.strip().splitlines()[-1])
        ev, before = heldout_events(name, batch, mode)
        row["predicted"] = sum(pages.simulate(ev, 4, None, before))
        out[name] = row
        print(f"{name} ({mode}): measured {row['minor_faults']:.0f} faults/pass "
              f"({100 * row['kernel_share']:.0f}% of CPU time in the kernel), predicted "
              f"{row['predicted']:.0f}", flush=True)
    return out


def random_counts(path) -> dict:
    import torch
    import validate_random_archs as R

    old = json.loads(Path(path).read_text())
    heap = pages.Heap()
    for name in R.DENSE:
        ev, before = heldout_events(name, old["batch"])
        pages.simulate(ev, 6, heap, before)
    rng = random.Random(old["seed"])
    out = {}
    for i in range(sum(k.startswith("net") for k in old["rows"])):
        torch.manual_seed(i)
        model, shape, desc = R.random_net(rng)
        ev, before = events(model, shape, old["batch"])
        pred = sum(pages.simulate(ev, 6, heap, before))
        row = old["rows"][f"net{i}"]
        out[f"net{i}"] = {"minor_faults": row.get("minor_faults"), "predicted": pred,
                          "largest_activation_bytes": row.get("largest_activation_bytes"),
                          "desc": desc}
        meas = row.get("minor_faults")
        shown = "not recorded" if meas is None else f"{meas:.0f}"
        print(f"{Path(path).name} net{i}: measured {shown}, predicted {pred:.0f}; {desc}",
              flush=True)
    return out


def summary(rows: dict) -> dict:
    """How often the prediction lands within 2x of the measurement (counts under 1000 on
    both sides count as agreeing: a few MiB of faults)."""
    pairs = [(r["predicted"], r["minor_faults"]) for r in rows.values()
             if r.get("minor_faults") is not None]
    agree = [p < 1000 and m < 1000 or (m > 0 and 0.5 <= p / m <= 2) for p, m in pairs]
    big = [p / m for p, m in pairs if m >= 10000]
    return {"n": len(pairs), "within_2x_or_both_small": sum(agree),
            "median_ratio_where_measured_10k_plus": statistics.median(big) if big else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(heldout.MODELS))
    ap.add_argument("--mode", choices=("inference", "training"), default="inference")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--random", nargs="*", default=[], metavar="JSON")
    ap.add_argument("--fault-cost", action="store_true", help="measure one fresh page's cost")
    ap.add_argument("--measure-one", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--save", metavar="JSON")
    ns = ap.parse_args(argv)
    if ns.measure_one:
        print(json.dumps(measure_one(ns.measure_one, ns.batch, ns.mode)))
        return 0
    names = [n for n in ns.models.split(",") if n]
    bad = [n for n in names if n not in heldout.MODELS]
    if bad:
        print(f"fresh_pages: unknown model(s) {', '.join(bad)}", file=sys.stderr)
        return 2
    res = {"load_before": os.getloadavg(), "batch": ns.batch}
    if ns.fault_cost:
        runs = [pages.measure_fault_cost() for _ in range(3)]
        cost = statistics.median(r["page_fault_cost"] for r in runs)
        res["fault_cost"] = {"page_fault_cost_s": cost, "runs": runs}
        each = ", ".join(f"{1e6 * r['page_fault_cost']:.2f}" for r in runs)
        print(f"one fresh page: {1e6 * cost:.2f} us of CPU time (median of 3: {each})",
              flush=True)
    if names:
        res[f"heldout_{ns.mode}"] = rows = heldout_counts(names, ns.batch, ns.mode)
        res[f"heldout_{ns.mode}_summary"] = summary(rows)
        print(res[f"heldout_{ns.mode}_summary"])
    for path in ns.random:
        res[Path(path).stem] = rows = random_counts(path)
        res[Path(path).stem + "_summary"] = summary(rows)
        print(res[Path(path).stem + "_summary"])
    res["load_after"] = os.getloadavg()
    if ns.save:
        Path(ns.save).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
