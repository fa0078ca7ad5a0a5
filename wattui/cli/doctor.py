"""``wattui doctor``: what this machine can measure, and how to fix what it cannot."""

from __future__ import annotations

import json


def add_parser(sub, common) -> None:
    d = sub.add_parser("doctor", help="what this machine can measure, and how to fix what it cannot")
    d.add_argument("--format", choices=("text", "json"), default="text")
    common.rapl_root(d)


def _doctor_lines(gpus: list[dict], cpus: list[dict], ticks: dict) -> list[tuple[str, str, str]]:
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
    lines.append(("native ticker", "ok" if ticks["available"] else "off", ticks["why"]))
    lines.append(("process tree", "ok", "CPU % and memory of the run via psutil"))
    lines.append(("simulated GPUs", "ok", "--simulate [N]: a known power curve, marked SIMULATED"))
    return lines


def run(args) -> int:
    from wattui.sources import native_ticks
    from wattui.sources.nvml_probe import nvml_probe
    from wattui.sources.rapl import rapl_probe

    gpus, cpus = nvml_probe(), rapl_probe(args.rapl_root)
    ok, why = native_ticks.status()
    ticks = {"available": ok, "why": why}
    if args.format == "json":
        print(json.dumps({"gpus": gpus, "cpu": cpus, "native_ticker": ticks}, indent=1))
        return 0
    lines = _doctor_lines(gpus, cpus, ticks)
    w = max(len(a) for a, _, _ in lines)
    for a, b, c in lines:
        print(f"{a:<{w}}  {b:<11}  {c}")
    return 0

