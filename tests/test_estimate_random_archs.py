"""scripts/validate_random_archs.py: its random architectures run for real, are priced in
full, and the largest activation the estimator sees is the one the real run writes."""

import random
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import validate_random_archs as V  # noqa: E402

from wattui.estimate.estimate import estimate_model  # noqa: E402
from wattui.estimate.predictors import resolve  # noqa: E402


def test_random_architectures_are_real_models_priced_in_full():
    rng = random.Random(11)
    pset = resolve("amd-epyc-cpu-time")
    descs = set()
    for _ in range(4):
        model, shape, desc = V.random_net(rng)
        descs.add(desc)
        written = []

        def hook(_m, _a, out, written=written):
            if isinstance(out, torch.Tensor):
                written.append(out.numel() * out.element_size())

        leaves = [m for m in model.modules() if not any(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        with torch.no_grad():
            out = model.eval()(torch.randn(1, *shape))
        for h in handles:
            h.remove()
        assert out.shape == (1, 1000)
        res = estimate_model(model, shape, 1, pset)
        assert not res.partial and res.total_energy_j > 0
        # the functional adds and SE multiplies write tensors no larger than a leaf's
        assert V.largest_activation(model, shape, 1) == max(written)
    assert len(descs) == 4  # four different architectures
