"""Deterministic simulated sessions written straight into a store, for snapshot tests,
screenshots and benchmarks. No Textual here; nothing runs: the files are written with
``SessionWriter`` from ``SimulatedSource`` readings taken on a fixed clock."""

from __future__ import annotations

import math
import os
from pathlib import Path

from wattui.sources.base import DeviceInfo, DeviceReading, Sample
from wattui.sources.simulated import SimulatedSource
from wattui.store.summary import SessionStats
from wattui.store.writer import SessionWriter

T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


def _proc_device() -> DeviceInfo:
    return DeviceInfo(
        key="proc",
        kind="proc",
        index=0,
        name="process tree of 4242",
        energy_method="none",
        power_method="none",
    )


def write_demo_session(
    root: Path,
    *,
    session_id: str = "20260101-120000-demo",
    gpus: int = 2,
    duration_s: float = 900.0,
    period_s: float = 1.0,
    t0: float = T0,
    running: bool = True,
    epochs: int = 12,
    output_lines: int = 60,
    host: str = "gpu-node-01",
    group: str | None = None,
    name: str = "demo",
    metrics: bool = True,
) -> Path:
    """A launch-mode simulated session of ``duration_s`` seconds starting at ``t0``.

    ``running=True`` leaves it running, owned by this process (so it reads as live);
    otherwise it is finished with exit code 0 and compacted to Parquet. ``group`` makes it
    one node's part of a multi-node run; ``metrics=False``: no accuracy reported (a rank
    other than 0).
    """
    import psutil

    t = [t0]
    src = SimulatedSource(gpus, clock=lambda: t[0])
    devices = [*src.devices(), _proc_device()]
    meta = {
        "name": name,
        "tags": ["demo"],
        "command": ["python", "train.py", "--epochs", str(epochs)],
        "mode": "launch",
        "pid": 4242,
        "cwd": "/home/demo",
        "host": host,
        "recorder_pid": os.getpid(),
        "recorder_host": __import__("socket").gethostname(),
        "recorder_started": psutil.Process().create_time(),
        "group": group,
        "simulated": True,
        "period_s": period_s,
        "devices": [d.to_dict() for d in devices],
        "notes": [f"SIMULATED: {gpus} simulated GPU(s); no real GPU is measured"],
        "baseline": {"seconds": 5.0, "watts": {f"gpu{i}": 60.0 for i in range(gpus)}},
        "started_at": t0,
    }
    w = SessionWriter(Path(root), session_id, meta)
    stats = SessionStats()
    n = int(duration_s / period_s) + 1
    epoch_every = max(1, n // max(1, epochs))
    out_every = max(1, n // max(1, output_lines))
    for k in range(n):
        t[0] = t0 + k * period_s
        load = 0.5 + 0.5 * math.sin(k / 37.0)
        readings = (
            *src.read(k * period_s),
            DeviceReading(
                key="proc",
                energy_j=None,
                power_w=None,
                energy_method="none",
                power_method="none",
                util_pct=round(95 + 10 * load, 1),
                mem_used_b=(3.0 + load) * 2**30,
            ),
        )
        s = Sample(seq=k, t_mono=k * period_s, t_wall=t[0], readings=readings)
        stats.add(s)
        w.add_sample(s)
        if metrics and k and k % epoch_every == 0:
            ep = k // epoch_every
            acc = round(0.95 - 0.5 * math.exp(-ep / 3.0), 4)
            w.add_event(
                {
                    "t_wall": t[0],
                    "kind": "metric",
                    "source": "stdout",
                    "epoch": ep,
                    "step": ep * 390,
                    "total_epochs": epochs,
                    "accuracy": acc,
                    "values_json": f'{{"loss": {round(2.0 * math.exp(-ep / 2.5), 4)}}}',
                }
            )
        if output_lines and k % out_every == 0:
            w.add_output(f"[{k:6d}] step {k * 13} loss {2.0 * math.exp(-k / 300):.4f}\n".encode())
        if k % 500 == 0:
            w.flush(live=stats.checkpoint())
    w.flush(live=stats.checkpoint())
    if not running:
        energy = sum(v["energy_j"] or 0 for k, v in stats.to_dict().items() if k != "proc")
        w.add_event({"t_wall": t[0], "kind": "exit", "message": "finished", "energy_j": energy})
        w.finish(
            status="finished", exit_code=0, ended_at=t[0], summary=stats.to_dict(), energy_j=energy
        )
    return w.dir


DEMO_GROUP = "slurm-4242"
# (session id, host, GPUs, metrics reported): rank 0 reports the accuracy
DEMO_GROUP_PARTS = (
    ("20260101-120000-node1", "gpu-node-01", 2, True),
    ("20260101-120000-node2", "gpu-node-02", 1, False),
    ("20260101-120001-node3", "gpu-node-03", 1, False),
)


def write_demo_group(
    root: Path, *, running: bool = True, duration_s: float = 900.0, group: str = DEMO_GROUP
) -> list[Path]:
    """A multi-node run: three nodes' sessions (2 + 1 + 1 simulated GPUs, distinct hosts)
    in one group, written as three recorders sharing a store would write them."""
    return [
        write_demo_session(
            root,
            session_id=sid,
            gpus=gpus,
            duration_s=duration_s,
            running=running,
            host=host,
            group=group,
            name="ddp-demo",
            metrics=metrics,
            output_lines=60 if metrics else 0,
        )
        for sid, host, gpus, metrics in DEMO_GROUP_PARTS
    ]


def demo_record_fn(session) -> dict:
    """``session_record`` without the metrics module, plus fixed metric figures, so
    snapshots do not move when the metrics code changes."""
    from wattui.sessions import session_record

    rec = session_record(session, metrics=False)
    e = rec.get("energy_j") or 0.0
    try:  # the accuracy last reported, as the metrics module would give it
        import polars as pl

        ev = session.events()
        accs = ev.filter((pl.col("kind") == "metric") & pl.col("accuracy").is_not_null())
        if accs.height:
            rec["accuracy"] = float(accs.sort("t_wall")["accuracy"][-1])
    except Exception:  # noqa: BLE001 - no events yet
        pass
    rec.update(
        {
            "co2_g": round(e / 3.6e6 * 350.0, 3),
            "cost": round(e / 3.6e6 * 0.25, 5),
            "currency": "EUR",
            "sam": 1.234,
            "sam_alpha": 5.0,
            "sam_beta": 5.0,
            "sam_unit": "kWh",
            "projected_sam": 1.1,
            "projected_energy_j": e * 1.6,
            "projected_energy_low_j": e * 1.4,
            "projected_energy_high_j": e * 1.9,
            "projected_end_time": T0 + 2 * 3600,
        }
    )
    return rec
