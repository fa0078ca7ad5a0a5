"""The result of an estimate: plain dataclasses, and their table and JSON forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from wattui.format import fmt_count, fmt_si
from wattui.sanitize import clean_text


@dataclass
class LayerEstimate:
    """One layer call: what it is and its estimated energy (None: unsupported)."""

    name: str
    type: str
    params: int
    macs: int
    output_shape: tuple[int, ...]
    energy_j: float | None
    predictor: str  # the model(s) that priced it, or why it costs nothing / is unpriced
    share: float = 0.0  # of the total
    ops: dict[str, int] = field(default_factory=dict)  # op kind -> calls in this row
    unpriced: dict[str, int] = field(default_factory=dict)  # of those, not priced

    @property
    def partial(self) -> bool:
        return bool(self.unpriced)


@dataclass
class EstimateResult:
    """Per-layer rows, per-type split, totals and predictor provenance."""

    layers: list[LayerEstimate]
    batch_size: int
    input_shape: tuple[int, ...]
    mode: str
    predictors: dict[str, Any]  # name, device, mode, provenance, path, unit
    training_method: str | None = None  # how a training step is priced
    samples: int | None = None
    by_type: dict[str, float] = field(default_factory=dict)
    unpriced_ops: dict[str, int] = field(default_factory=dict)  # op -> calls not priced
    by_kind: dict[str, float] = field(default_factory=dict)  # op kind -> cost
    # weights past the device's cache: {weight_bytes, cache_bytes, layers, added} (memory.py)
    memory_floor: dict[str, Any] | None = None
    activation_floor: dict[str, Any] | None = None
    # allocations the kernel faults in page by page: {pages, cost_per_page, added} (pages.py)
    fresh_pages: dict[str, Any] | None = None

    @property
    def total_energy_j(self) -> float:
        """Estimated J per forward pass (per training step in training mode); a lower bound
        when :attr:`partial`. In the set's unit (seconds for a time-proxy set)."""
        return sum(la.energy_j or 0.0 for la in self.layers)

    @property
    def partial(self) -> bool:
        """True when some op was not priced: the total is then a lower bound."""
        return bool(self.unpriced_ops)

    @property
    def unit(self) -> str:
        return self.predictors.get("unit") or "J"

    @property
    def per_sample_j(self) -> float:
        return self.total_energy_j / max(self.batch_size, 1)

    @property
    def per_epoch_j(self) -> float | None:
        return None if self.samples is None else self.per_sample_j * self.samples

    @property
    def unsupported(self) -> list[LayerEstimate]:
        """Rows with at least one unpriced op."""
        return [la for la in self.layers if la.unpriced]

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
            "energy_unit": UNITS.get(self.unit, self.unit),
            "per": "training step (forward+backward)" if self.mode == "training"
            else "forward pass",
            "total_energy_j": self.total_energy_j,
            "partial": self.partial,
            "total_is": "lower bound (some ops unpriced)" if self.partial else "complete",
            "unpriced": [{"op": k, "count": v} for k, v in sorted(self.unpriced_ops.items())],
            "per_sample_j": self.per_sample_j,
            "samples": self.samples,
            "per_epoch_j": self.per_epoch_j,
            "total_macs": self.total_macs,
            "training_method": self.training_method,
            "by_type": self.by_type,
            "by_kind": self.by_kind,
            "memory_floor": self.memory_floor,
            "activation_floor": self.activation_floor,
            "fresh_pages": self.fresh_pages,
            "predictors": pred,
            "layers": [
                {**asdict(la), "output_shape": list(la.output_shape), "partial": la.partial,
                 "estimated": True}
                for la in self.layers
            ],
            "unsupported": [{"name": la.name, "type": la.type, "unpriced": la.unpriced}
                            for la in self.unsupported],
        }


UNITS = {"J": "J", "s": "s of CPU time (time-proportional proxy, NOT energy)"}


def format_table(res: EstimateResult) -> str:
    """Human-readable table; every figure says it is estimated and for which device."""
    p = res.predictors
    per = "training step" if res.mode == "training" else "forward pass"
    u = res.unit
    what = "energy" if u == "J" else "CPU time (a time-proportional proxy for energy, NOT energy)"
    lines = [
        f"ESTIMATED {what} ({res.mode}) for device: {p.get('device')}",
        f"predictor set: {p.get('name')} (fitted for {p.get('mode')}; {p.get('path') or ''})",
    ]
    if res.training_method:
        lines.append(f"training step = {res.training_method}")
    lines.append(f"input {tuple(res.input_shape)}, batch size {res.batch_size}")
    head = ("layer", "type", "params", "MACs", f"est. {u}/{per}", "share", "priced by")
    rows = [head]
    for la in res.layers:
        cost = fmt_si(la.energy_j, u) + (" +?" if la.partial and la.energy_j is not None else "")
        rows.append((clean_text(la.name), clean_text(la.type), fmt_count(la.params),
                     fmt_count(la.macs), cost,
                     "-" if la.energy_j is None else f"{100 * la.share:.1f}%", la.predictor))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(c[:40].ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("")
    bound = "LOWER BOUND, " if res.partial else ""
    lines.append(f"estimated total per {per}: {bound}{fmt_si(res.total_energy_j, u)}"
                 f"  ({fmt_count(res.total_macs)} MACs)")
    lines.append(f"estimated per sample: {bound}{fmt_si(res.per_sample_j, u)}")
    if res.per_epoch_j is not None:
        extra = f" ({res.per_epoch_j / 3.6e6:.3g} kWh)" if u == "J" else ""
        # an inference estimate over N samples is one pass over them, not a training epoch
        what = "per epoch" if res.mode == "training" else "per inference pass over"
        lines.append(f"estimated {what} ({res.samples} samples): {bound}"
                     f"{fmt_si(res.per_epoch_j, u)}{extra}")
    if res.by_kind:
        split = ", ".join(f"{k} {100 * v / (res.total_energy_j or 1):.0f}%"
                          for k, v in sorted(res.by_kind.items(), key=lambda kv: -kv[1])
                          if v >= 0.005 * (res.total_energy_j or 1))
        lines.append(f"estimated split by op kind (>= 0.5%): {split}")
    if res.memory_floor:
        m = res.memory_floor
        lines.append(f"weights {m['weight_bytes'] / 2**20:.0f} MiB > the device's "
                     f"{m['cache_bytes'] / 2**20:.0f} MiB cache: {m['layers']} layer(s) priced at "
                     f"least at streaming their weights from memory (+{fmt_si(m['added'], u)})")
    if res.activation_floor:
        m = res.activation_floor
        lines.append(f"an activation exceeds the device's {m['cache_bytes'] / 2**20:.0f} MiB "
                     f"cache: {m['ops']} op(s) priced at least at moving their activations through "
                     f"memory (+{fmt_si(m['added'], u)})")
    if res.fresh_pages and res.fresh_pages["added"]:
        m = res.fresh_pages
        lines.append(f"allocations served by fresh pages (glibc malloc's mmap and trim rule, "
                     f"simulated): {m['pages']:.0f} page faults per pass "
                     f"(+{fmt_si(m['added'], u)})")
    if res.partial:
        ops = ", ".join(f"{clean_text(k)} x{v}" for k, v in sorted(res.unpriced_ops.items()))
        lines.append(f"PARTIAL: the total is a lower bound; unpriced ops (not in the total): "
                     f"{ops}")
    return "\n".join(lines)
