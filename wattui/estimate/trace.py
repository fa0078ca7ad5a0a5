"""Trace a ``torch.nn.Module`` on the meta device: per-layer shapes and MACs, no real compute.

Every leaf module (no children), every module treated as one unit (``nn.MultiheadAttention``)
and every functional ``scaled_dot_product_attention`` / ``matmul`` called outside a leaf
becomes one :class:`LayerRecord`. Parameters and buffers are swapped for meta tensors with
``torch.func.functional_call``, so the caller's model is untouched and nothing is allocated.
torch is imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from wattui.estimate import macs as M

ATOMIC = ("MultiheadAttention",)  # modules with children that are priced as one unit
SDPA = "scaled_dot_product_attention"
MATMUL = "matmul"


@dataclass
class LayerRecord:
    """One traced layer call: what it is, its shapes and the features predictors need."""

    name: str
    type: str
    params: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    config: dict[str, Any] = field(default_factory=dict)
    # attention is priced as parts: (predictor type, feature dict) pairs
    parts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _shape(x) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape) if hasattr(x, "shape") else ()


def _first_tensor(obj):
    if hasattr(obj, "shape"):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        return _first_tensor(list(obj.values()))
    return None


def _elementwise_config(shape: tuple[int, ...]) -> dict[str, Any]:
    batch = shape[0] if len(shape) > 1 else 1
    n = prod(shape)
    return {"batch_size": batch, "input_size": n // max(batch, 1), "elements": n}


def _attention_parts(batch: int, n_heads: int, q_len: int, k_len: int, e_qk: int, e_v: int):
    """Matmul and softmax parts of attention: QK^T, softmax over scores, scores @ V."""
    scores = batch * n_heads * q_len * k_len
    rows = batch * n_heads * q_len
    return [
        ("matmul", {"macs": scores * e_qk, "elements": scores, "batch_size": rows,
                    "input_size": e_qk, "output_size": k_len}),
        ("softmax", {"elements": scores, "batch_size": batch, "input_size": scores // batch}),
        ("matmul", {"macs": scores * e_v, "elements": rows * e_v, "batch_size": rows,
                    "input_size": k_len, "output_size": e_v}),
    ]


def _linear_part(rows: int, n_in: int, n_out: int) -> tuple[str, dict[str, Any]]:
    macs = M.linear_macs(rows, n_in, n_out)
    return ("linear", {"macs": macs, "batch_size": rows, "input_size": n_in,
                       "output_size": n_out, "elements": rows * n_out})


def describe(module, name: str, inputs: tuple, output) -> LayerRecord:
    """Build the record for one module call from its inputs and output."""
    kind = type(module).__name__
    x = _first_tensor(inputs)
    y = _first_tensor(output)
    in_shape, out_shape = _shape(x), _shape(y)
    params = sum(int(p.numel()) for p in module.parameters())
    rec = LayerRecord(name, kind, params, in_shape, out_shape, 0)
    if kind == "Conv2d" and len(in_shape) in (3, 4):
        batch = in_shape[0] if len(in_shape) == 4 else 1
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        out_hw = out_shape[-2:]
        rec.macs = M.conv2d_macs(batch, module.in_channels, module.out_channels, k, out_hw,
                                 module.groups)
        rec.config = {"batch_size": batch, "image_size": in_shape[-2], "kernel_size": k[0],
                      "in_channels": module.in_channels, "out_channels": module.out_channels,
                      "stride": s[0], "padding": p[0] if isinstance(p[0], int) else 0}
    elif kind == "MaxPool2d" and len(in_shape) in (3, 4):
        batch = in_shape[0] if len(in_shape) == 4 else 1
        k, s, p = _pair(module.kernel_size), _pair(module.stride or module.kernel_size), \
            _pair(module.padding)
        rec.macs = M.maxpool2d_macs(batch, in_shape[-3], k, out_shape[-2:])
        rec.config = {"batch_size": batch, "image_size": in_shape[-2], "kernel_size": k[0],
                      "in_channels": in_shape[-3], "stride": s[0], "padding": p[0]}
    elif kind == "Linear":
        rows = prod(in_shape[:-1]) if len(in_shape) > 1 else 1
        _, cfg = _linear_part(rows, module.in_features, module.out_features)
        rec.macs, rec.config = cfg["macs"], cfg
    elif kind == "MultiheadAttention":
        rec.parts, rec.macs = _mha_parts(module, inputs)
        rec.config = {"elements": prod(out_shape)}
    else:
        rec.config = _elementwise_config(out_shape or in_shape)
        if kind in ("ReLU", "AdaptiveAvgPool2d"):
            # the seed's ptflops-style counts: one per output element
            rec.macs = prod(out_shape)
    rec.config.setdefault("macs", rec.macs)
    rec.config.setdefault("elements", prod(out_shape))
    return rec


def _mha_parts(module, inputs):
    q = inputs[0]
    k = inputs[1] if len(inputs) > 1 and inputs[1] is not None else q
    qs, ks = _shape(q), _shape(k)
    if len(qs) == 2:  # unbatched (L, E)
        batch, q_len, k_len = 1, qs[0], ks[0]
    elif module.batch_first:
        batch, q_len, k_len = qs[0], qs[1], ks[1]
    else:
        batch, q_len, k_len = qs[1], qs[0], ks[0]
    e, h = module.embed_dim, module.num_heads
    parts = [
        _linear_part(batch * q_len, e, e),
        _linear_part(batch * k_len, module.kdim, e),
        _linear_part(batch * k_len, module.vdim, e),
        *_attention_parts(batch, h, q_len, k_len, e // h, e // h),
        _linear_part(batch * q_len, e, e),
    ]
    return parts, sum(p[1].get("macs", 0) for p in parts)


def _sdpa_record(name: str, args, kwargs) -> LayerRecord:
    q, k, v = (list(args) + [kwargs.get(n) for n in ("query", "key", "value")])[:3]
    qs, ks, vs = _shape(q), _shape(k), _shape(v)
    lead = qs[:-2]
    batch = lead[0] if lead else 1
    heads = prod(lead[1:]) if len(lead) > 1 else 1
    parts = _attention_parts(batch, heads, qs[-2], ks[-2], qs[-1], vs[-1])
    macs = sum(p[1].get("macs", 0) for p in parts)
    out = (*lead, qs[-2], vs[-1])
    return LayerRecord(name, SDPA, 0, qs, out, macs, {"elements": prod(out)}, parts)


def _matmul_record(name: str, a, b) -> LayerRecord:
    a_s, b_s = _shape(a), _shape(b)
    if len(a_s) < 2 or len(b_s) < 2:
        n = prod(a_s) * (b_s[-1] if len(b_s) > 1 else 1)
        macs, out = n, a_s[:-1]
    else:
        macs = M.matmul_macs(a_s, b_s)
        out = (*a_s[:-1], b_s[-1])
    rows = prod(out[:-1]) if len(out) > 1 else 1
    cfg = {"macs": macs, "batch_size": rows, "elements": prod(out),
           "input_size": a_s[-1] if a_s else 1, "output_size": out[-1] if out else 1}
    return LayerRecord(name, MATMUL, 0, a_s, tuple(out), macs, cfg)


def meta_input(shape_or_tensor, batch_size: int | None = None, dtype=None):
    """A meta tensor of the input shape, with ``batch_size`` as its first dimension."""
    import torch

    if isinstance(shape_or_tensor, torch.Tensor):
        shape = tuple(shape_or_tensor.shape)
        dtype = dtype or shape_or_tensor.dtype
        if batch_size is not None and shape:
            shape = (batch_size, *shape[1:])
    else:
        shape = tuple(int(s) for s in shape_or_tensor)
        shape = (batch_size or 1, *shape)
    return torch.empty(shape, dtype=dtype or torch.float32, device="meta")


def trace_model(model, example, batch_size: int | None = None, dtype=None) -> list[LayerRecord]:
    """Run ``model`` once on a meta input and return one record per priced call."""
    import torch
    from torch.overrides import TorchFunctionMode

    x = meta_input(example, batch_size, dtype)
    paths = {id(m): n for n, m in model.named_modules()}
    names = {k: v or type(model).__name__ for k, v in paths.items()}
    records: list[LayerRecord] = []
    stack: list[Any] = []  # modules entered, innermost last
    handles = []

    def is_unit(m) -> bool:
        return type(m).__name__ in ATOMIC or not any(True for _ in m.children())

    def inside_unit() -> bool:
        return any(is_unit(m) for m in stack)

    def pre(m, args):
        stack.append(m)

    def post(m, args, out):
        stack.pop()
        if is_unit(m) and not inside_unit():
            records.append(describe(m, names.get(id(m), type(m).__name__), args, out))

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))

    matmuls = {torch.matmul, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__,
               torch.Tensor.bmm}

    class Functional(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if not inside_unit():
                owner = paths.get(id(stack[-1]), "") if stack else ""
                prefix = f"{owner}." if owner else ""
                if func is torch.nn.functional.scaled_dot_product_attention:
                    records.append(_sdpa_record(prefix + SDPA, args, kwargs))
                elif func in matmuls and len(args) >= 2:
                    records.append(_matmul_record(prefix + MATMUL, args[0], args[1]))
            return func(*args, **kwargs)

    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), Functional():
            state = {k: torch.empty_like(v, device="meta") for k, v in
                     list(model.named_parameters()) + list(model.named_buffers())}
            if all(v.is_meta for v in list(model.parameters()) + list(model.buffers())):
                model(x)
            else:
                torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return records
