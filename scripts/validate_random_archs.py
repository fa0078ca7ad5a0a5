"""Validate `wattui estimate` on random convolutional architectures, a broader test than the
nine held-out models: none of them exists before the seed is chosen.

    python scripts/validate_random_archs.py [--nets 16] [--seed 5] [--save JSON] [--reuse JSON]

Each net: a stem convolution, then 3-8 random blocks (MobileNet-style inverted residuals with
depthwise convolutions and optional squeeze-excitation, ResNet-style basic blocks, plain
conv + max-pool), random widths, activations (ReLU, ReLU6, SiLU), strides and input size
(96-224), batch 8. Measured and normalised as scripts/validate_estimates.py does (median
single-thread process CPU time per forward pass; the same dense references, measured in the
same run). Each set is scored with and without the activation floor
(wattui/estimate/memory.py) to show what the floor does on architectures nobody looked at.
"""

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wattui.estimate import memory, pages, validation  # noqa: E402
from wattui.estimate.estimate import estimate_model  # noqa: E402
from wattui.estimate.predictors import resolve  # noqa: E402

SETS = ("getzner-xeon-cpu", "amd-epyc-cpu-time")
DENSE = ("resnet18", "vit_tiny", "residual_mlp")


def random_net(rng: random.Random):
    """(model, input shape, description) of one random architecture."""
    from torch import nn

    acts = {"relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True),
            "silu": lambda: nn.SiLU(inplace=True)}
    act = rng.choice(list(acts))

    def cbn(cin, cout, k, s, groups=1, a=True):
        mods = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout)]
        return nn.Sequential(*mods, acts[act]()) if a else nn.Sequential(*mods)

    class Inverted(nn.Module):
        def __init__(self, cin, cout, s, t, k, se):
            super().__init__()
            hid = cin * t
            mods = [cbn(cin, hid, 1, 1)] if t > 1 else []
            mods.append(cbn(hid, hid, k, s, groups=hid))
            self.body = nn.Sequential(*mods)
            self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hid, max(4, hid // 8), 1),
                                    acts[act](), nn.Conv2d(max(4, hid // 8), hid, 1),
                                    nn.Sigmoid()) if se else None
            self.proj = cbn(hid, cout, 1, 1, a=False)
            self.res = s == 1 and cin == cout

        def forward(self, x):
            y = self.body(x)
            if self.se is not None:
                y = y * self.se(y)
            y = self.proj(y)
            return x + y if self.res else y

    class Basic(nn.Module):
        def __init__(self, cin, cout, s):
            super().__init__()
            self.a, self.b = cbn(cin, cout, 3, s), cbn(cout, cout, 3, 1, a=False)
            self.down = cbn(cin, cout, 1, s, a=False) if s != 1 or cin != cout else None
            self.out = acts[act]()

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            return self.out(self.b(self.a(x)) + idt)

    size = rng.choice((96, 128, 160, 192, 224))
    c = rng.choice((16, 24, 32, 48, 64))
    layers, desc = [cbn(3, c, 3, 2)], [f"{size}px {act} stem{c}"]
    hw = size // 2
    for _ in range(rng.randint(3, 8)):
        kind = rng.choice(("inverted", "inverted", "basic", "plain"))
        s = 2 if hw >= 14 and rng.random() < 0.4 else 1
        cout = int(min(320, max(16, c * rng.choice((1, 1, 1.5, 2)))))
        if kind == "inverted":
            t, k, se = rng.choice((1, 3, 6)), rng.choice((3, 5)), rng.random() < 0.4
            layers.append(Inverted(c, cout, s, t, k, se))
            desc.append(f"inv{t}x k{k}{' se' if se else ''} s{s} {cout}")
        elif kind == "basic":
            layers.append(Basic(c, cout, s))
            desc.append(f"basic s{s} {cout}")
        else:
            layers += [cbn(c, cout, 3, 1), nn.MaxPool2d(2)] if hw >= 8 else [cbn(c, cout, 3, 1)]
            desc.append(f"plain{' pool' if hw >= 8 else ''} {cout}")
            s = 2 if hw >= 8 else 1
        c, hw = cout, (hw + s - 1) // s
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))
    return model, (3, size, size), ", ".join(desc)


def measure(model, x, reps: int = 5) -> tuple[float, float, float]:
    """Median process CPU time per pass, and the share of it spent in the kernel and the
    minor page faults per pass (getrusage), over ``reps`` passes after one warm-up."""
    import resource

    import torch

    torch.set_num_threads(1)
    model.eval()
    with torch.no_grad():
        model(x)
        times = []
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(reps):
            t0 = time.process_time()
            model(x)
            times.append(time.process_time() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    sys_share = (r1.ru_stime - r0.ru_stime) / max(sum(times), 1e-9)
    return statistics.median(times), sys_share, (r1.ru_minflt - r0.ru_minflt) / reps


def largest_activation(model, shape, batch: int) -> int:
    """Bytes of the largest tensor an op of the model writes (traced on the meta device)."""
    from wattui.estimate import trace

    return max((4 * int(o.cfg.get("elements", 0)) for r in trace.trace_model(model, shape, batch)
                for o in r.ops), default=0)


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=int, default=16)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--save", metavar="JSON")
    ap.add_argument("--reuse", metavar="JSON", help="take the measurements (and seed, nets, "
                    "batch) from a saved run: re-estimate only")
    ap.add_argument("--page-fault-cost", type=float, metavar="SECONDS",
                    help="also score each set pricing fresh pages at this CPU time per page "
                    "(which replaces the activation floor)")
    ns = ap.parse_args(argv)
    old = json.loads(Path(ns.reuse).read_text()) if ns.reuse else None
    if old:
        ns.seed, ns.batch = old["seed"], old["batch"]
        ns.nets = sum(k.startswith("net") for k in old["rows"])
    psets = [resolve(s) for s in SETS]
    paged = {p.name: pages.with_fault_cost(p, ns.page_fault_cost, "this machine")
             for p in psets} if ns.page_fault_cost else {}
    floor = memory.activation_floor
    load0 = os.getloadavg()
    rows = {}
    for name in DENSE:
        m = old["rows"][name]["measured_s"] if old else \
            validation.measure_cpu_time(name, ns.batch, 5)["median_s"]
        est = {}
        for p in psets:
            est[p.name] = validation.estimate(name, p, ns.batch).total_energy_j
            memory.activation_floor = lambda *a, **k: None  # scored without it too
            est[p.name + " no floor"] = validation.estimate(name, p, ns.batch).total_energy_j
            memory.activation_floor = floor
            if paged.get(p.name):
                est[p.name + " fresh pages"] = validation.estimate(
                    name, paged[p.name], ns.batch).total_energy_j
        rows[name] = {"measured_s": m, "estimates": est, "desc": "dense reference"}
        print(f"{name}: {1e3 * m:.1f} ms", file=sys.stderr, flush=True)
    rng = random.Random(ns.seed)
    for i in range(ns.nets):
        torch.manual_seed(i)
        model, shape, desc = random_net(rng)
        x = torch.randn(ns.batch, *shape)
        prev = old["rows"][f"net{i}"] if old else None
        m, sys_share, faults = (prev["measured_s"], prev.get("kernel_share"),
                                prev.get("minor_faults")) if prev else measure(model, x)
        est = {}
        for p in psets:
            est[p.name] = estimate_model(model, shape, ns.batch, p).total_energy_j
            memory.activation_floor = lambda *a, **k: None
            est[p.name + " no floor"] = estimate_model(model, shape, ns.batch, p).total_energy_j
            memory.activation_floor = floor
            if paged.get(p.name):
                est[p.name + " fresh pages"] = estimate_model(
                    model, shape, ns.batch, paged[p.name]).total_energy_j
        big = largest_activation(model, shape, ns.batch)
        rows[f"net{i}"] = {"measured_s": m, "estimates": est, "desc": desc,
                           "kernel_share": sys_share, "minor_faults": faults,
                           "largest_activation_bytes": big}
        kernel = "" if sys_share is None else \
            f", {100 * sys_share:.0f}% in the kernel, {faults:.0f} faults"
        print(f"net{i}: {1e3 * m:.1f} ms{kernel}, largest activation {big / 2**20:.1f} MiB; "
              f"{desc}", file=sys.stderr, flush=True)
    load = old["load"] if old else (load0, os.getloadavg())
    meas = {k: r["measured_s"] for k, r in rows.items()}
    variants = list(next(iter(rows.values()))["estimates"])
    out = {"load": load, "seed": ns.seed, "batch": ns.batch, "rows": rows, "summary": {}}
    print(f"load average {load[0][0]:.1f} before, {load[1][0]:.1f} after")
    print("| variant | median | worst factor off | within 0.67-1.5 |\n|---|---|---|---|")
    for v in variants:
        norm = validation.normalise({k: r["estimates"][v] for k, r in rows.items()}, meas,
                                    list(DENSE))
        nets = [norm[k] for k in rows if k.startswith("net")]
        for k in rows:
            rows[k].setdefault("normalised", {})[v] = norm[k]
        worst = max(max(r, 1 / r) for r in nets)
        inside = sum(0.67 <= r <= 1.5 for r in nets)
        out["summary"][v] = {"median": statistics.median(nets), "worst": worst,
                             "inside": inside, "n": len(nets),
                             "geomean": math.exp(statistics.mean(math.log(r) for r in nets))}
        print(f"| {v} | {statistics.median(nets):.2f} | {worst:.2f}x | {inside}/{len(nets)} |")
    for k, r in rows.items():
        print(f"{k}: " + ", ".join(f"{v} {r['normalised'][v]:.2f}" for v in variants))
    if ns.save:
        Path(ns.save).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
