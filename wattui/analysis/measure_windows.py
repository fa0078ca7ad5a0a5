"""A session's ``wattui.measure()`` windows, each with the recorder's own figure for it.

``wattui show`` lists them; the figures are the run's (measured in the run, or SIMULATED)
and the recorder's samples interpolated at the window's edges.
"""

from __future__ import annotations

import json


def measure_windows(session) -> list[dict]:
    """The run's ``wattui.measure()`` windows (``measure`` events), oldest first."""
    from wattui.sanitize import clean_text

    try:
        rows = session.events().to_dicts()
    except Exception:  # noqa: BLE001 - a torn events file must not break `show`
        return []
    out = []
    for r in rows:
        if r.get("kind") != "measure":
            continue
        try:
            v = json.loads(r.get("values_json") or "{}")
        except ValueError:
            continue
        if not isinstance(v, dict):
            continue
        name = v.get("name") if isinstance(v.get("name"), str) else ""
        out.append(
            {
                "name": clean_text(name, 60) or "block",
                "energy_j": v.get("energy_j"),
                "started_at": v.get("started_at"),
                "ended_at": v.get("ended_at"),
                "duration_s": v.get("duration_s"),
                "simulated": bool(v.get("simulated")),
                "gpus": {k[: -len("_energy_j")]: x for k, x in v.items() if k.startswith("gpu") and k.endswith("_energy_j")},
            }
        )
    if out:
        _recorder_energy(session, out)
    return out


def _recorder_energy(session, windows: list[dict]) -> None:
    """Each window's GPU energy as the recorder's samples give it (cumulative energy
    interpolated linearly at the window's edges): ``recorder_energy_j``, a cross-check, and
    the only figure when the script could not read the GPUs itself."""
    import bisect

    try:
        df = session.samples()
        kinds = {d.get("key"): d.get("kind") for d in session.meta.get("devices", [])}
        series: dict[str, tuple[list[float], list[float]]] = {}
        for r in df.select("device", "t_wall", "energy_j").drop_nulls().sort("t_wall").iter_rows():
            if kinds.get(r[0]) == "gpu":
                ts, es = series.setdefault(r[0], ([], []))
                ts.append(r[1])
                es.append(r[2])
    except Exception:  # noqa: BLE001
        return

    def at(ts: list[float], es: list[float], t: float) -> float | None:
        if not ts or t < ts[0] or t > ts[-1]:
            return None
        i = bisect.bisect_left(ts, t)
        if ts[i] == t or i == 0:
            return es[i]
        t0, t1, e0, e1 = ts[i - 1], ts[i], es[i - 1], es[i]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)

    for w in windows:
        t0, t1 = w.get("started_at"), w.get("ended_at")
        if not isinstance(t0, (int, float)) or not isinstance(t1, (int, float)) or not series:
            w["recorder_energy_j"] = None
            continue
        parts = [(at(ts, es, t1), at(ts, es, t0)) for ts, es in series.values()]
        ok = [b - a for b, a in parts if a is not None and b is not None]
        w["recorder_energy_j"] = sum(ok) if ok and len(ok) == len(parts) else None

