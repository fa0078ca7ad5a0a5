"""``estimate_model``: trace a model on the meta device and price every layer."""

from __future__ import annotations

from wattui.estimate import pricing, trace
from wattui.estimate.predictors import PredictorSet, resolve
from wattui.estimate.result import EstimateResult, LayerEstimate


def estimate_model(model, example_input_shape_or_tensor, batch_size: int | None = None,
                   predictors: PredictorSet | str | None = None, mode: str = "inference",
                   samples: int | None = None, dtype=None) -> EstimateResult:
    """Estimate the energy of one forward pass (or training step) of ``model``.

    ``example_input_shape_or_tensor`` is a per-sample shape such as ``(3, 224, 224)`` or an
    example batch (its first dimension is replaced by ``batch_size`` when given). Nothing is
    computed for real: the model runs on meta tensors. ``predictors`` is a
    :class:`PredictorSet`, a name or a path; ``None`` picks the calibrated set of this
    machine's device if there is one, else the shipped set (CPU inference, Getzner data).
    """
    if mode not in ("inference", "training"):
        raise ValueError(f"mode must be 'inference' or 'training', not {mode!r}")
    if isinstance(predictors, PredictorSet):
        pset = predictors
    else:
        from wattui.estimate.devices import current_devices

        pset = resolve(predictors, [] if predictors else current_devices(), mode)
    records = trace.trace_model(model, example_input_shape_or_tensor, batch_size, dtype)
    x = trace.meta_input(example_input_shape_or_tensor, batch_size, dtype)
    layers = []
    by_type: dict[str, float] = {}
    for r in records:
        priced = pricing.price(r.type, r.config, r.parts, pset, mode)
        layers.append(LayerEstimate(r.name, r.type, r.params, r.macs, r.output_shape,
                                    priced.energy_j, priced.predictor))
        if priced.energy_j is not None:
            by_type[r.type] = by_type.get(r.type, 0.0) + priced.energy_j
    total = sum(by_type.values())
    for la in layers:
        la.share = (la.energy_j or 0.0) / total if total > 0 else 0.0
    scaled = mode == "training" and pset.mode == "inference"
    return EstimateResult(
        layers=layers, batch_size=int(x.shape[0]) if x.dim() else 1,
        input_shape=tuple(int(s) for s in x.shape[1:]), mode=mode,
        predictors={"name": pset.name, "device": pset.device, "mode": pset.mode,
                    "path": pset.path, "provenance": pset.provenance},
        training_factor=pricing.TRAINING_FACTOR if scaled else None,
        samples=samples, by_type=by_type)
