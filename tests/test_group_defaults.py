"""Which runs share a group by default: several recorders measuring one run at once (a
Slurm step of several nodes or tasks, torchrun workers), never runs one after another."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wattui.groups.node_env import default_group

# The variables Slurm sets, as `sbatch --nodes=1` runs its batch script on one host ...
BATCH_ONE_NODE = {
    "SLURM_JOB_ID": "734512",
    "SLURM_JOB_NUM_NODES": "1",
    "SLURM_NNODES": "1",
    "SLURM_NTASKS": "1",
}
# ... as a 4-node job's batch script sees them (no step: the batch script runs on one node) ...
BATCH_FOUR_NODES = {
    "SLURM_JOB_ID": "734513",
    "SLURM_JOB_NUM_NODES": "4",
    "SLURM_NNODES": "4",
    "SLURM_NTASKS": "4",
    "SLURM_TASKS_PER_NODE": "1(x4)",
}
# ... and as `srun --ntasks-per-node=1` gives them to each task of step 0 of that job
STEP_FOUR_NODES = {
    **BATCH_FOUR_NODES,
    "SLURM_STEP_ID": "0",
    "SLURM_STEPID": "0",
    "SLURM_STEP_NUM_NODES": "4",
    "SLURM_STEP_NUM_TASKS": "4",
    "SLURM_PROCID": "2",
    "SLURM_NODEID": "2",
}


@pytest.mark.parametrize(
    "env, want",
    [
        ({}, None),
        (BATCH_ONE_NODE, None),  # two runs after each other in one allocation: not a group
        (
            {
                **BATCH_ONE_NODE,
                "SLURM_STEP_ID": "0",
                "SLURM_STEP_NUM_NODES": "1",
                "SLURM_STEP_NUM_TASKS": "1",
            },
            None,
        ),
        (BATCH_FOUR_NODES, None),  # one recorder in the batch script: one run on its own
        (STEP_FOUR_NODES, "734513.0"),
        (
            {**STEP_FOUR_NODES, "SLURM_STEP_ID": "1", "SLURM_STEPID": "1"},
            "734513.1",
        ),  # the next step
        # one node, eight tasks (one per GPU) in a step
        (
            {
                **BATCH_ONE_NODE,
                "SLURM_STEP_ID": "3",
                "SLURM_STEP_NUM_NODES": "1",
                "SLURM_STEP_NUM_TASKS": "8",
            },
            "734512.3",
        ),
        # torchrun workers, each under its own recorder
        (
            {
                "TORCHELASTIC_RUN_ID": "resnet-7",
                "WORLD_SIZE": "8",
                "TORCHELASTIC_RESTART_COUNT": "0",
            },
            "resnet-7",
        ),
        (
            {
                "TORCHELASTIC_RUN_ID": "resnet-7",
                "WORLD_SIZE": "8",
                "TORCHELASTIC_RESTART_COUNT": "2",
            },
            "resnet-7.restart2",
        ),
        ({"TORCHELASTIC_RUN_ID": "resnet-7", "WORLD_SIZE": "1"}, None),
        ({"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "8"}, None),  # torchrun's default id
        ({"SLURM_JOB_ID": "9", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "junk"}, None),
    ],
)
def test_default_group(env, want):
    assert default_group(env) == want


def _record(store, env: dict, *opts: str) -> dict:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "TORCHELASTIC_", "WORLD_SIZE"))
    }
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattui",
            "record",
            "--simulate",
            "--store",
            str(store),
            *opts,
            "--",
            sys.executable,
            "-c",
            "pass",
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    sid = p.stderr.split("recording session ", 1)[1].split()[0]
    return json.loads((store / "sessions" / sid / "meta.json").read_text())


@pytest.mark.slow
def test_sequential_runs_in_one_allocation_are_separate_sessions(tmp_path):
    store = tmp_path / "store"
    a = _record(store, BATCH_ONE_NODE)
    b = _record(store, BATCH_ONE_NODE)
    assert a["group"] is None and b["group"] is None and a["id"] != b["id"]
    # tasks of one multi-node step share a group; the next step is another group
    s0 = _record(store, STEP_FOUR_NODES)
    s1 = _record(store, {**STEP_FOUR_NODES, "SLURM_STEP_ID": "1", "SLURM_STEPID": "1"})
    assert (s0["group"], s1["group"]) == ("734513.0", "734513.1")
    assert _record(store, {**BATCH_ONE_NODE, "SLURM_STEP_ID": "5"})["group"] is None
    assert (
        _record(store, BATCH_ONE_NODE, "--group", "ablation-3")["group"] == "ablation-3"
    )  # --group wins
