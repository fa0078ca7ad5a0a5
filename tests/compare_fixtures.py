"""Deterministic session stores for the comparison screen's tests, snapshots and screenshots.

Sessions are written with the real SessionWriter (samples, metric events, finish), at
fixed times, so tables and SVGs do not change from run to run.
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

from wattui.sources.base import DeviceInfo, DeviceReading, Sample
from wattui.store.paths import sessions_dir, write_json_atomic
from wattui.store.summary import SessionStats
from wattui.store.writer import SessionWriter

T0 = 1793520000.0  # 2026-11-01 08:00:00 UTC
DEAD_PID = 4_194_000  # above the default pid_max: never a live process


def make_session(
    root: Path,
    sid: str,
    *,
    name: str | None = None,
    model: str | None = None,
    command=("python", "train.py"),
    tags=(),
    host: str = "lab-a100",
    gpu_name: str = "NVIDIA A100-SXM4-80GB",
    n_gpus: int = 1,
    watts: float = 250.0,
    duration_s: float = 3600.0,
    period_s: float = 300.0,
    started_at: float = T0,
    accs=(0.5, 0.7, 0.8),
    status: str = "finished",
    simulated: bool = True,
    metrics_in_meta: bool = True,
    projected_energy_j: float | None = None,
    co2_per_kwh: float | None = 350.0,
    price_per_kwh: float | None = 0.3,
    method: str | None = None,
    group: str | None = None,
) -> Path:
    """One session. ``status`` finished/failed: finished normally; ``interrupted``: the
    recorder died (status left 'running', pid dead); ``running``: recorder is this process."""
    method = method or ("simulated" if simulated else "counter")
    devices = [
        DeviceInfo(
            key=f"gpu{i}",
            kind="gpu",
            index=i,
            name=gpu_name,
            uuid=f"GPU-{sid[-4:]}-{i:04d}-0000-0000",
            driver="550.54.15",
            power_limit_w=400.0,
            energy_method=method,
            power_method="simulated" if simulated else "instant",
            simulated=simulated,
        )
        for i in range(n_gpus)
    ]
    live = status in ("running", "interrupted")
    try:
        import psutil

        rec_started = psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        rec_started = None
    meta = {
        "name": name,
        "tags": list(tags),
        "command": list(command),
        "mode": "launch",
        "pid": None,
        "cwd": "/home/user/project",
        "host": host,
        "recorder_pid": os.getpid() if status == "running" else DEAD_PID,
        "recorder_host": socket.gethostname(),
        "recorder_started": rec_started if status == "running" else None,
        "group": group,
        "simulated": simulated,
        "period_s": period_s,
        "devices": [d.to_dict() for d in devices],
        "notes": [],
        "baseline": {"seconds": 5.0, "watts": {d.key: 55.0 for d in devices}},
        "started_at": started_at,
    }
    w = SessionWriter(root, sid, meta)
    stats = SessionStats()
    n = int(duration_s // period_s) + 1
    energy = [0.0] * n_gpus
    last_p = None
    for k in range(n):
        t = started_at + k * period_s
        ps = [
            watts * (0.9 + 0.1 * math.sin(k / 5.0 + i)) if k else watts * 0.3 for i in range(n_gpus)
        ]
        if last_p is not None:
            energy = [e + (a + b) / 2 * period_s for e, a, b in zip(energy, last_p, ps)]
        last_p = ps
        s = Sample(
            seq=k,
            t_mono=1000.0 + k * period_s,
            t_wall=t,
            readings=tuple(
                DeviceReading(
                    key=f"gpu{i}",
                    energy_j=energy[i],
                    power_w=ps[i],
                    energy_method=method,
                    power_method="simulated" if simulated else "instant",
                    util_pct=90.0,
                    temp_c=60.0,
                )
                for i in range(n_gpus)
            ),
        )
        w.add_sample(s)
        stats.add(s)
    total = sum(energy)
    n_acc = len(accs)
    for j, a in enumerate(accs):
        t = started_at + duration_s * (j + 1) / max(n_acc, 1)
        ev = {"t_wall": t, "kind": "metric", "source": "report", "accuracy": a, "epoch": j + 1}
        w.add_event(ev)
        w.add_event(
            {"t_wall": t, "kind": "epoch_end", "epoch": j + 1, "energy_j": total * (j + 1) / n_acc}
        )
    metrics = {}
    if metrics_in_meta:
        kwh = total / 3.6e6
        metrics = {
            "accuracy": accs[-1] if accs else None,
            "best_accuracy": max(accs) if accs else None,
            "model": model,
            "co2_g": kwh * co2_per_kwh if co2_per_kwh is not None else None,
            "cost": kwh * price_per_kwh if price_per_kwh is not None else None,
            "currency": "EUR" if price_per_kwh is not None else None,
            "carbon_g_per_kwh": co2_per_kwh,
            "projected_energy_j": projected_energy_j,
        }
    if live:
        w.flush(fsync=False)
        w.update_meta(**metrics)
        write_json_atomic(
            w.dir / "live.json",
            {"t_wall": started_at + duration_s, "devices": stats.to_dict(), "energy_j": total},
        )
        return w.dir
    w.finish(
        status=status,
        exit_code=0 if status == "finished" else 1,
        ended_at=started_at + duration_s,
        summary=stats.to_dict(),
        energy_j=total,
        **metrics,
    )
    return w.dir


def make_corrupt(root: Path, name: str = "20261101-000000-dead") -> Path:
    d = sessions_dir(root) / name
    d.mkdir(parents=True)
    (d / "meta.json").write_text("{ not json", encoding="utf-8")
    return d


DEMO = [
    # sid, kwargs
    (
        "20261101-080000-a001",
        dict(
            name="resnet50",
            tags=("paper", "cnn"),
            n_gpus=4,
            watts=280,
            duration_s=12 * 3600,
            accs=(0.61, 0.72, 0.761),
        ),
    ),
    (
        "20261102-090000-a002",
        dict(
            name="mobilenet-v2",
            tags=("paper", "mobile"),
            n_gpus=1,
            watts=180,
            duration_s=10 * 3600,
            accs=(0.55, 0.66, 0.718),
        ),
    ),
    (
        "20261103-100000-a003",
        dict(
            name="vit-h14",
            tags=("paper", "vit"),
            n_gpus=8,
            watts=380,
            duration_s=24 * 3600,
            accs=(0.70, 0.82, 0.880),
        ),
    ),
    (
        "20261104-110000-a004",
        dict(
            name="efficientnet-b0",
            tags=("paper", "mobile"),
            n_gpus=2,
            watts=220,
            duration_s=8 * 3600,
            accs=(0.62, 0.73, 0.773),
        ),
    ),
    (
        "20261105-120000-a005",
        dict(
            name=None,
            model="clip-vit-l",
            command=("torchrun", "clip.py"),
            tags=("vit",),
            n_gpus=4,
            watts=350,
            duration_s=16 * 3600,
            accs=(0.68, 0.79, 0.835, 0.83),
            host="lab-h100",
            gpu_name="NVIDIA H100 80GB HBM3",
            simulated=False,
            method="counter",
        ),
    ),
    (
        "20261106-130000-a006",
        dict(
            name="smoke-test",
            tags=("debug",),
            n_gpus=1,
            watts=120,
            duration_s=600,
            period_s=15,
            accs=(0.31,),
        ),
    ),
    (
        "20261107-140000-a007",
        dict(
            name="resnet50-long",
            tags=("cnn",),
            n_gpus=2,
            watts=300,
            duration_s=6 * 3600,
            accs=(0.60, 0.70),
            status="interrupted",
            projected_energy_j=4.6e7,
        ),
    ),
    (
        "20261108-150000-a008",
        dict(
            name="diverged",
            tags=("debug",),
            n_gpus=1,
            watts=260,
            duration_s=1800,
            accs=(),
            status="failed",
        ),
    ),
]


# A multi-node run: one session per node (distinct hosts), all in group "ddp-42".
GROUP_ID = "ddp-42"
GROUP_PARTS = [
    ("20261109-090000-n001", dict(host="node-a", n_gpus=2, watts=300, accs=(0.6, 0.75, 0.81))),
    ("20261109-090001-n002", dict(host="node-b", n_gpus=2, watts=290, accs=())),
    ("20261109-090002-n003", dict(host="node-c", n_gpus=1, watts=310, accs=())),
]


def make_group(root: Path, group: str = GROUP_ID, started_at: float = T0 + 8 * 86400) -> list[Path]:
    """The sessions of one multi-node run, written as three recorders would write them:
    same name and group, one host each; only rank 0 (node-a) reports accuracy."""
    return [
        make_session(
            Path(root),
            sid,
            name="llm-ddp",
            tags=("paper", "ddp"),
            command=("torchrun", "--nnodes", "3", "train.py"),
            duration_s=4 * 3600,
            started_at=started_at + i,
            group=group,
            **kw,
        )
        for i, (sid, kw) in enumerate(GROUP_PARTS)
    ]


def make_demo_store(root: Path, corrupt: bool = True) -> Path:
    root = Path(root)
    for i, (sid, kw) in enumerate(DEMO):
        make_session(root, sid, started_at=T0 + i * 86400 + i * 3600, **kw)
    if corrupt:
        make_corrupt(root)
    return root


if __name__ == "__main__":  # pragma: no cover - handy for trying the screen by hand
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wattui-demo")
    make_demo_store(out)
    print(json.dumps(sorted(p.name for p in sessions_dir(out).iterdir())))
