"""``estimate_model``: trace a model on the meta device and price every aten op."""

from __future__ import annotations

from collections import Counter

from wattui.estimate import memory, pages, pricing, trace
from wattui.estimate import ops as O
from wattui.estimate.predictors import PredictorSet, resolve
from wattui.estimate.result import EstimateResult, LayerEstimate


def training_method(pset: PredictorSet, mode: str) -> str | None:
    """How a training step is priced (None in inference)."""
    if mode != "training":
        return None
    if pset.mode == "training":
        return ("forward ops priced by predictors measured on forward+backward passes "
                "(calibrated in training mode)")
    return "forward and backward ops traced and priced; " + O.BACKWARD_NOTE


def estimate_model(model, example_input_shape_or_tensor, batch_size: int | None = None,
                   predictors: PredictorSet | str | None = None, mode: str = "inference",
                   samples: int | None = None, dtype=None) -> EstimateResult:
    """Estimate the energy of one forward pass (or training step) of ``model``.

    ``example_input_shape_or_tensor`` is a per-sample shape such as ``(3, 224, 224)`` or an
    example batch (its first dimension is replaced by ``batch_size`` when given). Nothing is
    computed for real: the model runs on meta tensors. ``predictors`` is a
    :class:`PredictorSet`, a name or a path; ``None`` picks the calibrated set of this
    machine's device if there is one, else the shipped set (CPU inference, Getzner data).
    A training step is forward + backward, traced op by op (no optimizer step).
    """
    if mode not in ("inference", "training"):
        raise ValueError(f"mode must be 'inference' or 'training', not {mode!r}")
    if isinstance(predictors, PredictorSet):
        pset = predictors
    else:
        from wattui.estimate.devices import current_devices

        pset = resolve(predictors, [] if predictors else current_devices(), mode)
    trace_backward = mode == "training" and pset.mode != "training"
    fault_cost = pages.fault_cost(pset)
    storage = trace.StorageLog() if fault_cost else None
    records = trace.trace_model(model, example_input_shape_or_tensor, batch_size, dtype,
                                training=mode == "training", backward=trace_backward,
                                storage=storage)
    fresh = pages.pages_by_row(storage.events) if storage else {}
    x = trace.meta_input(example_input_shape_or_tensor, batch_size, dtype)
    weights = list(model.parameters())  # each shared parameter once
    n_params = sum(int(p.numel()) for p in weights)
    weight_bytes = sum(int(p.numel()) * p.element_size() for p in weights)
    bytes_per_param = weight_bytes / n_params if n_params else 0.0
    floor_of = memory.weight_floor(pset, weight_bytes)
    # a set that prices fresh pages has no activation floor: the pages replace it (chosen on
    # random architectures, docs/estimation.md)
    act_floor = None if fault_cost else memory.activation_floor(pset, memory.largest_activation(
        [o for r in records for o in r.ops if o.kind != O.UNPRICED]))
    floored = act_floored = 0
    layers = []
    by_type: dict[str, float] = {}
    by_kind: dict[str, float] = {}
    unpriced: Counter = Counter()
    for r in records:
        energy, labels, kinds, missing = 0.0, [], Counter(), Counter()
        ops = r.ops + r.backward_ops
        if r.fused and all(pricing.model_for(o.kind, pset) for o in r.fused):
            ops = r.fused
        for op in ops:
            kinds[op.kind if op.kind != O.UNPRICED else f"aten.{op.aten}"] += 1
            cost, label = pricing.price_op(op, pset)
            if label not in labels:
                labels.append(label)
            if cost is None:
                missing[f"aten.{op.aten}" if op.kind == O.UNPRICED else op.kind] += 1
            else:
                kind = f"{op.kind}_backward" if op.backward else op.kind
                by_kind[kind] = by_kind.get(kind, 0.0) + cost
                low = act_floor.of(op) if act_floor else None
                if low is not None and low > cost:  # the surplus is the floor's, in by_kind
                    act_floored += 1
                    by_kind[memory.ACT_KIND] = by_kind.get(memory.ACT_KIND, 0.0) + low - cost
                    cost = low
                    if memory.ACT_KIND not in labels:
                        labels.append(memory.ACT_KIND)
                energy += cost
        n_fresh = fresh.get(id(r), 0.0)
        if n_fresh and fault_cost and (energy or not ops):
            by_kind[pages.KIND] = by_kind.get(pages.KIND, 0.0) + n_fresh * fault_cost
            energy += n_fresh * fault_cost
            labels.append(pages.KIND)
        floor = floor_of.of(int(r.params * bytes_per_param), ops) if floor_of else None
        if floor is not None and not missing and floor > energy:
            floored += 1
            by_kind[memory.KIND] = by_kind.get(memory.KIND, 0.0) + floor - energy
            energy = floor
            labels.append(memory.KIND)
        unpriced.update(missing)
        priced = len(ops) - sum(missing.values())
        value = energy if (priced or not ops) else None
        label = ", ".join(labels) if labels else "none (no compute)"
        layers.append(LayerEstimate(r.name, r.type, r.params, sum(o.macs for o in ops),
                                    r.output_shape, value, label, ops=dict(kinds),
                                    unpriced=dict(missing)))
        if value is not None:
            by_type[r.type] = by_type.get(r.type, 0.0) + value
    total = sum(by_type.values())
    for la in layers:
        la.share = (la.energy_j or 0.0) / total if total > 0 else 0.0
    return EstimateResult(
        layers=layers, batch_size=int(x.shape[0]) if x.dim() else 1,
        input_shape=tuple(int(s) for s in x.shape[1:]), mode=mode,
        predictors={"name": pset.name, "device": pset.device, "mode": pset.mode,
                    "path": pset.path, "provenance": pset.provenance, "unit": pset.unit},
        training_method=training_method(pset, mode), samples=samples, by_type=by_type,
        unpriced_ops=dict(unpriced), by_kind=by_kind,
        memory_floor={"weight_bytes": weight_bytes, "cache_bytes": floor_of.cache_bytes,
                      "layers": floored, "added": by_kind[memory.KIND]} if floored else None,
        activation_floor={"cache_bytes": act_floor.cache_bytes, "ops": act_floored,
                          "added": by_kind[memory.ACT_KIND]} if act_floored else None,
        fresh_pages={"pages": sum(fresh.values()), "cost_per_page": fault_cost,
                     "added": by_kind.get(pages.KIND, 0.0)} if storage else None)
