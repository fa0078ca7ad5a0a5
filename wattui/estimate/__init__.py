"""Energy from architecture: per-layer predictors priced on a meta-traced model.

Importing this package does not import torch; :func:`estimate_model` imports it on use.
It never imports textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["estimate_model", "EstimateResult", "LayerEstimate", "PredictorSet"]

if TYPE_CHECKING:  # pragma: no cover
    from wattui.estimate.estimate import estimate_model
    from wattui.estimate.predictors import PredictorSet
    from wattui.estimate.result import EstimateResult, LayerEstimate


def __getattr__(name: str):
    if name == "estimate_model":
        from wattui.estimate.estimate import estimate_model

        return estimate_model
    if name in ("EstimateResult", "LayerEstimate"):
        from wattui.estimate import result

        return getattr(result, name)
    if name == "PredictorSet":
        from wattui.estimate.predictors import PredictorSet

        return PredictorSet
    raise AttributeError(name)
