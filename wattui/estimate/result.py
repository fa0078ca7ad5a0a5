"""The result of an estimate: plain dataclasses, and their table and JSON forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LayerEstimate:
    """One layer call: what it is and its estimated energy (None: unsupported)."""

    name: str
    type: str
    params: int
    macs: int
    output_shape: tuple[int, ...]
    energy_j: float | None
    predictor: str  # the model that priced it, or why it costs nothing / is unsupported
    share: float = 0.0  # of the total


@dataclass
class EstimateResult:
    """Per-layer rows, per-type split, totals and predictor provenance."""

    layers: list[LayerEstimate]
    batch_size: int
    input_shape: tuple[int, ...]
    mode: str
    predictors: dict[str, Any]  # name, device, mode, provenance, path
    training_factor: float | None = None  # set when training is scaled from inference
    samples: int | None = None
    by_type: dict[str, float] = field(default_factory=dict)

    @property
    def total_energy_j(self) -> float:
        """Estimated J per forward pass (per training step in training mode)."""
        return sum(la.energy_j or 0.0 for la in self.layers)

    @property
    def per_sample_j(self) -> float:
        return self.total_energy_j / max(self.batch_size, 1)

    @property
    def per_epoch_j(self) -> float | None:
        return None if self.samples is None else self.per_sample_j * self.samples

    @property
    def unsupported(self) -> list[LayerEstimate]:
        return [la for la in self.layers if la.energy_j is None]

    @property
    def total_macs(self) -> int:
        return sum(la.macs for la in self.layers)

    def to_dict(self) -> dict[str, Any]:
        pred = dict(self.predictors)
        return {
            "estimated": True,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "input_shape": list(self.input_shape),
            "energy_unit": "J",
            "per": "training step (forward+backward)" if self.mode == "training"
            else "forward pass",
            "total_energy_j": self.total_energy_j,
            "per_sample_j": self.per_sample_j,
            "samples": self.samples,
            "per_epoch_j": self.per_epoch_j,
            "total_macs": self.total_macs,
            "training_factor": self.training_factor,
            "by_type": self.by_type,
            "predictors": pred,
            "layers": [
                {**asdict(la), "output_shape": list(la.output_shape), "estimated": True}
                for la in self.layers
            ],
            "unsupported": [{"name": la.name, "type": la.type} for la in self.unsupported],
        }


def _fmt_j(j: float | None) -> str:
    if j is None:
        return "n/a"
    for unit, f in (("kJ", 1e3), ("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6)):
        if abs(j) >= f:
            return f"{j / f:.3g} {unit}"
    return f"{j:.3g} J"


def _fmt_n(n: int) -> str:
    for unit, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= f:
            return f"{n / f:.3g}{unit}"
    return str(n)


def format_table(res: EstimateResult) -> str:
    """Human-readable table; every figure says it is estimated and for which device."""
    p = res.predictors
    per = "training step" if res.mode == "training" else "forward pass"
    lines = [
        f"ESTIMATED energy ({res.mode}) for device: {p.get('device')}",
        f"predictor set: {p.get('name')} (fitted for {p.get('mode')}; {p.get('path') or ''})",
    ]
    if res.training_factor:
        lines.append(f"training = {res.training_factor:g} x inference (rule of thumb: backward"
                     " ~ 2 x forward); no training predictors for this device")
    lines.append(f"input {tuple(res.input_shape)}, batch size {res.batch_size}")
    head = ("layer", "type", "params", "MACs", f"est. J/{per}", "share", "priced by")
    rows = [head]
    for la in res.layers:
        rows.append((la.name, la.type, _fmt_n(la.params), _fmt_n(la.macs), _fmt_j(la.energy_j),
                     "-" if la.energy_j is None else f"{100 * la.share:.1f}%", la.predictor))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(c[:40].ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("")
    lines.append(f"estimated total per {per}: {_fmt_j(res.total_energy_j)}"
                 f"  ({_fmt_n(res.total_macs)} MACs)")
    lines.append(f"estimated per sample: {_fmt_j(res.per_sample_j)}")
    if res.per_epoch_j is not None:
        kwh = res.per_epoch_j / 3.6e6
        lines.append(f"estimated per epoch ({res.samples} samples): {_fmt_j(res.per_epoch_j)}"
                     f" ({kwh:.3g} kWh)")
    if res.by_type:
        split = ", ".join(f"{k} {100 * v / (res.total_energy_j or 1):.0f}%"
                          for k, v in sorted(res.by_type.items(), key=lambda kv: -kv[1]) if v)
        lines.append(f"estimated split by type: {split}")
    if res.unsupported:
        kinds = sorted({la.type for la in res.unsupported})
        lines.append(f"UNSUPPORTED (not in the total): {len(res.unsupported)} layer(s) of type "
                     + ", ".join(kinds))
    return "\n".join(lines)
