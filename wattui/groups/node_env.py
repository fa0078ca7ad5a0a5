"""Which node this recorder runs on, and which group it joins, read from the environment
(Slurm's, torchrun's, or ``$WATTUI_HOSTNAME``)."""

from __future__ import annotations

import os
import socket

__all__ = ["ENV_HOSTNAME", "default_group", "node_hostname"]

ENV_HOSTNAME = "WATTUI_HOSTNAME"


def _count(env, *names: str) -> int:
    """The first of ``names`` set in ``env``, as a number (Slurm writes "2" or "2(x3)")."""
    for n in names:
        v = (env.get(n) or "").split("(")[0].strip()
        if v:
            try:
                return int(v)
            except ValueError:
                return 1
    return 1


def default_group(env=None) -> str | None:
    """The group id a recorder takes when ``--group`` is not given, or None (no group).

    A group means several recorders measuring one run at the same time, so:

    - Slurm: only inside a job step (``srun``) of more than one node or task; the id is
      ``<SLURM_JOB_ID>.<SLURM_STEP_ID>``, so successive steps of one job are separate runs.
      A recorder started by the batch script itself, or a one-task step, is one run on its
      own (two runs after each other in one allocation are two sessions, not one group).
    - torchrun (a recorder per worker): only when ``WORLD_SIZE`` > 1 and the run has an id
      (torchrun's default ``none`` tells no runs apart); a restart after a failure
      (``TORCHELASTIC_RESTART_COUNT`` > 0) is a run of its own: ``<ID>.restart<N>``.
    """
    env = os.environ if env is None else env
    job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
    if job and step:
        nodes = _count(env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES")
        tasks = _count(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")
        if nodes > 1 or tasks > 1:
            return f"{job}.{step}"
    run = env.get("TORCHELASTIC_RUN_ID")
    if run and run != "none" and _count(env, "WORLD_SIZE") > 1:
        restart = _count(env, "TORCHELASTIC_RESTART_COUNT") if env.get("TORCHELASTIC_RESTART_COUNT") else 0
        return f"{run}.restart{restart}" if restart > 0 else run
    return None


def node_hostname() -> str:
    """This node's name: ``$WATTUI_HOSTNAME`` when set (containers, tests), else the host name."""
    return os.environ.get(ENV_HOSTNAME) or socket.gethostname()
