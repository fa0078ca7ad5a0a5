"""SAM's parameters for a comparison: alpha, beta and the energy unit, checked, labelled,
and resolved from what the sessions were recorded with."""

from __future__ import annotations

from dataclasses import dataclass

from wattui.metrics.sam import check_params, sam


@dataclass(frozen=True)
class SamParams:
    alpha: float = 5.0
    beta: float = 5.0
    unit: str = "kWh"

    def checked(self) -> SamParams:
        a, b, u = check_params(self.alpha, self.beta, self.unit)
        return SamParams(a, b, u)

    def label(self, greek: bool = True) -> str:
        a, b = ("α", "β") if greek else ("alpha", "beta")
        return f"{a}={self.alpha:g} {b}={self.beta:g} {self.unit}"

    def formula(self) -> str:
        return (
            f"SAM = beta * accuracy^alpha / log10(energy in {self.unit}), "
            f"alpha={self.alpha:g}, beta={self.beta:g}"
        )


DEFAULT_PARAMS = SamParams()


def sam_value(accuracy, energy_j, params: SamParams) -> tuple[float | None, str | None]:
    """SAM and, when undefined, why (never raises for bad data; bad params raise ValueError)."""
    r = sam_result(accuracy, energy_j, params)
    return r.value, r.undefined_reason


def sam_result(accuracy, energy_j, params: SamParams):
    """:class:`wattui.metrics.sam.SamResult` under ``params`` (with its near-singularity flag)."""
    return sam(accuracy, energy_j, params.alpha, params.beta, params.unit)


PARAM_KEYS = ("alpha", "beta", "unit")


def resolve_params(
    rows: list[dict], alpha: float | None = None, beta: float | None = None, unit: str | None = None
) -> tuple[SamParams, list[str]]:
    """SAM's parameters for comparing ``rows``: each one given wins; else the one every
    session was recorded with, when they agree; else the default, and a line that says
    they disagree. Returns the parameters and the lines to show the user."""
    given = {"alpha": alpha, "beta": beta, "unit": unit}
    default = SamParams()
    recorded = [r["rec_sam"] for r in rows if isinstance(r.get("rec_sam"), list | tuple)]
    out: dict = {}
    notes: list[str] = []
    from_sessions = []
    for i, k in enumerate(PARAM_KEYS):
        if given[k] is not None:
            out[k] = given[k]
            continue
        vals = [str(r[i]) if k == "unit" else float(r[i]) for r in recorded if r[i] is not None]
        distinct = sorted(set(vals), key=vals.index)  # in the order the sessions came
        if len(distinct) == 1:
            out[k] = distinct[0]
            if out[k] != getattr(default, k):
                from_sessions.append(k)
        else:
            out[k] = getattr(default, k)
            if len(distinct) > 1:
                counts = ", ".join(
                    f"{v if k == 'unit' else format(v, 'g')}: {vals.count(v)}" for v in distinct
                )
                flag = "--sam-unit" if k == "unit" else f"--{k}"
                notes.append(
                    f"the sessions were recorded with different SAM {k}s ({counts}); all are "
                    f"compared with {k} {getattr(default, k)} here ({flag} to choose)"
                )
    params = SamParams(float(out["alpha"]), float(out["beta"]), str(out["unit"])).checked()
    if from_sessions:
        notes.insert(
            0, f"SAM {params.label(greek=False)}: as the sessions were recorded ({', '.join(from_sessions)})"
        )
    return params, notes


def sam_label(params: SamParams, greek: bool = True) -> str:
    return f"SAM ({params.label(greek)})"
