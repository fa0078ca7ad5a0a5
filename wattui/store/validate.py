"""Checking a session's ``meta.json`` and ``live.json`` as they are read.

Everything downstream (listings, exports, screens) may then trust the types of the keys
it reads: a number is a finite int or float, a list is a list of what it should hold.
A session that fails is reported in one line (which key, what is wrong) and skipped;
the writer never produces one, so this only meets damaged or foreign files.
"""

from __future__ import annotations

import math

from wattui.store.summary import STATE_KEYS

__all__ = ["meta_problem", "live_problem", "checkpoint_problem", "MAX_ID"]

MAX_ID = 128


def _is_num(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int like 10**400
        return False


def _num(v) -> str | None:
    return None if v is None or _is_num(v) else "not a finite number"


def _int(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or abs(v) > 2**63:
        return "not an integer"
    return None


def _str(v) -> str | None:
    return None if v is None or isinstance(v, str) else "not a string"


def _group(v) -> str | None:  # ids from a scheduler: a string, or a number written as one
    return None if v is None or isinstance(v, str) or _is_num(v) else "not a string"


def _bool(v) -> str | None:
    return None if v is None or isinstance(v, (bool, int)) else "not true/false"


def _strs(v) -> str | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return "not a list of strings"
    return None


def _dict(v) -> str | None:
    return None if v is None or isinstance(v, dict) else "not an object"


STAT_KEYS = ("energy_j", "mean_w", "peak_w", "last_w", "duration_s")


def _stats(v) -> str | None:
    """``{device: {energy_j, mean_w, ...}}`` as in ``summary`` and ``live.json``."""
    if v is None:
        return None
    if not isinstance(v, dict):
        return "not an object"
    for dev, s in v.items():
        if not isinstance(s, dict):
            return f"{dev!r} is not an object"
        for k in STAT_KEYS:
            if _num(s.get(k)):
                return f"{dev!r}.{k} is not a finite number"
    return None


DEVICE_CHECKS = {
    "kind": _str,
    "index": _int,
    "name": _str,
    "uuid": _str,
    "driver": _str,
    "power_limit_w": _num,
    "energy_method": _str,
    "power_method": _str,
    "simulated": _bool,
    "notes": _strs,
}


def _devices(v) -> str | None:
    if v is None:
        return None
    if not isinstance(v, list):
        return "not a list"
    for i, d in enumerate(v):
        if not isinstance(d, dict):
            return f"[{i}] is not an object"
        if not isinstance(d.get("key"), str) or not d["key"]:
            return f"[{i}] has no key"
        for k, check in DEVICE_CHECKS.items():
            why = check(d.get(k))
            if why:
                return f"[{i}].{k} is {why}"
    return None


def _baseline(v) -> str | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        return "not an object"
    if _num(v.get("seconds")):
        return "seconds is not a finite number"
    w = v.get("watts")
    if w is not None and (not isinstance(w, dict) or not all(_is_num(x) for x in w.values())):
        return "watts is not an object of numbers"
    return None


META_CHECKS = {
    "name": _str,
    "tags": _strs,
    "command": _strs,
    "mode": _str,
    "pid": _int,
    "cwd": _str,
    "host": _str,
    "group": _group,
    "recorder_pid": _int,
    "recorder_host": _str,
    "recorder_started": _num,
    "status": _str,
    "exit_code": _int,
    "started_at": _num,
    "ended_at": _num,
    "simulated": _bool,
    "period_s": _num,
    "devices": _devices,
    "notes": _strs,
    "warnings": _strs,
    "baseline": _baseline,
    "summary": _stats,
    "energy_j": _num,
    "metric_settings": _dict,
    "metrics": _dict,
    "write_errors": _int,
    "dropped_rows": _int,
    # metric results stored at the end of a run (listed without reading the events)
    "accuracy": _num,
    "best_accuracy": _num,
    "sam": _num,
    "projected_energy_j": _num,
    "co2_g": _num,
    "cost": _num,
    "carbon_g_per_kwh": _num,
    "pue": _num,
    "sam_alpha": _num,
    "sam_beta": _num,
    "sam_unit": _str,
    "model": _str,
    "currency": _str,
    "carbon_source": _str,
    "epochs_done": _num,
    "total_epochs": _num,
}


def id_problem(sid) -> str | None:
    if not isinstance(sid, str):
        return "id is not a string"
    if not sid or len(sid) > MAX_ID:
        return f"id is empty or longer than {MAX_ID} characters"
    if sid.startswith(".") or "/" in sid or "\\" in sid or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in sid):
        return "id holds a path separator, a leading dot or a control character"
    return None


def meta_problem(meta) -> str | None:
    """Why ``meta`` is not a readable session's meta.json, or None."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    if "id" not in meta:
        return "no id"
    why = id_problem(meta["id"])
    if why:
        return why
    v = meta.get("schema_version", 0)
    if isinstance(v, bool) or not isinstance(v, int):
        return "schema_version is not an integer"
    for key, check in META_CHECKS.items():
        why = check(meta.get(key))
        if why:
            return f"{key}: {why}"
    return None


def live_problem(live) -> str | None:
    """Why ``live`` is not a usable live.json, or None."""
    if not isinstance(live, dict):
        return "not a JSON object"
    if _num(live.get("t_wall")):
        return "t_wall is not a finite number"
    why = _stats(live.get("devices"))
    return f"devices: {why}" if why else None


CHECKPOINT_KEYS = ("samples_offset", "seq", "state")


def _state(v) -> str | None:
    """``{device: {first_e, ..., power_n, last_w}}``: live.json's running state."""
    if not isinstance(v, dict):
        return "not an object"
    for dev, s in v.items():
        if not isinstance(s, dict):
            return f"{dev!r} is not an object"
        for k in STATE_KEYS:
            x = s.get(k)
            if k == "power_n":
                if _int(x) or x is None or x < 0:
                    return f"{dev!r}.{k} is not a count"
            elif (x is None and k == "power_sum") or _num(x):
                return f"{dev!r}.{k} is not a finite number"
    return None


def checkpoint_problem(live: dict) -> str | None:
    """Why a usable live.json's checkpoint keys (``samples_offset``, ``seq``, ``state``)
    cannot be continued from the samples, or None. A live.json of an older wattui has
    none of them: nothing is wrong with it, it is used as it is."""
    present = [k for k in CHECKPOINT_KEYS if k in live]
    if not present:
        return None
    if len(present) < len(CHECKPOINT_KEYS):
        return f"{', '.join(k for k in CHECKPOINT_KEYS if k not in live)} missing"
    off = live["samples_offset"]
    if off is None or _int(off) or off < 1:
        return "samples_offset is not a positive integer"
    if _int(live["seq"]):
        return "seq is not an integer"
    why = _state(live["state"])
    return f"state: {why}" if why else None
