"""Trace a ``torch.nn.Module`` on the meta device at the dispatcher level: every aten op.

A ``TorchDispatchMode`` (as ``torch.utils.flop_counter`` uses) sees every operator that
runs, whether it comes from a module or a functional call (``F.relu``, ``x + y``,
``F.max_pool2d``), and :func:`wattui.estimate.ops.classify` turns each into priced items.
For reading, ops are grouped into rows: one per call of a leaf module (or of a module priced
as one unit, ``nn.MultiheadAttention``), named by its path; ops outside any leaf get a row of
their own, named by the module whose ``forward`` issued them. In training mode the backward
pass is traced too (``loss = output.sum()``): the backward ops run between the gradients of
a row's output and of its input join that row; the rest (backward of functional ops, bias
sums of the loss...) are grouped by kind under ``(backward)``.

Parameters and buffers are swapped for meta tensors with ``torch.func.functional_call``, so
the caller's model is untouched and nothing is allocated. torch is imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wattui.estimate.ops import UNPRICED, OpCall, classify, first_tensor, lstm_parts, shape_of

ATOMIC = ("MultiheadAttention",)  # modules with children that are priced as one unit
BACKWARD_NAME = "(backward)"
SDPA = "scaled_dot_product_attention"


@dataclass
class LayerRecord:
    """One row: a leaf-module call, a functional op, or backward ops of one kind."""

    name: str
    type: str
    params: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    ops: list[OpCall] = field(default_factory=list)
    # the same work as the fused kernel(s) the real device runs instead (nn.LSTM): priced in
    # place of ``ops`` when the set has models for them
    fused: list[OpCall] = field(default_factory=list)
    # training: the backward ops run inside this call's backward (nn.LSTM), kept with the row
    # so that they can be swapped for the fused backward kernel too
    backward_ops: list[OpCall] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)


def _float_output(obj):
    """The first floating-point tensor of a model's output (what the traced loss sums)."""
    if hasattr(obj, "is_floating_point"):
        return obj if obj.is_floating_point() else None
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) \
        else ()
    for o in items:
        t = _float_output(o)
        if t is not None:
            return t
    return None


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


def op_name(func) -> str:
    """``aten.add_.Tensor`` -> ``add_``."""
    packet = getattr(func, "overloadpacket", None)
    return getattr(packet, "__name__", None) or str(func).split(".")[-2]


def trace_model(model, example, batch_size: int | None = None, dtype=None,
                training: bool = False, backward: bool | None = None) -> list[LayerRecord]:
    """Run ``model`` once on a meta input and return the rows with their priced op items.
    ``training`` runs it in train mode with gradients and, unless ``backward`` is False,
    traces the backward pass of ``output.sum()`` too."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    x = meta_input(example, batch_size, dtype)
    names = {id(m): n or type(model).__name__ for n, m in model.named_modules()}
    records: list[LayerRecord] = []
    stack: list[Any] = []  # modules entered, innermost last
    unit: list[tuple[Any, LayerRecord]] = []  # the open unit row, if any (outermost only)
    back_rows: dict[str, LayerRecord] = {}
    in_backward_of: list[LayerRecord] = []  # the fused call whose backward is running
    phase = ["forward"]
    handles = []

    def is_unit(m) -> bool:
        return type(m).__name__ in ATOMIC or not any(True for _ in m.children())

    def pre(m, args):
        stack.append(m)
        if not unit and is_unit(m):
            t = first_tensor(args)
            rec = LayerRecord(names.get(id(m), type(m).__name__), type(m).__name__,
                              sum(int(p.numel()) for p in m.parameters()), shape_of(t), ())
            records.append(rec)
            unit.append((m, rec))

    def post(m, args, out):
        if stack and stack[-1] is m:
            stack.pop()
        if unit and unit[0][0] is m:
            rec = unit[0][1]
            rec.output_shape = shape_of(first_tensor(out))
            if isinstance(m, torch.nn.LSTM) and m.proj_size == 0:
                rec.fused = lstm_parts(m, rec.input_shape)
            if training:
                track_backward(rec, first_tensor(args), first_tensor(out))
            unit.clear()

    def track_backward(rec, x, y):
        """Attribute the backward ops run between the gradient of this call's output and
        that of its input to its row (the innermost such call wins); a fused kernel's
        backward is priced as two forward kernels (input and weight gradients)."""
        if not (hasattr(y, "register_hook") and y.requires_grad):
            return
        if rec.fused:
            rec.fused += [OpCall(o.kind, o.cfg, 2.0, "mkldnn_rnn_layer_backward", True)
                          for o in list(rec.fused)]

        def enter(grad):
            in_backward_of.append(rec)

        def leave(grad):
            if rec in in_backward_of:
                in_backward_of.remove(rec)

        y.register_hook(enter)
        if hasattr(x, "register_hook") and x.requires_grad:
            x.register_hook(leave)

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))

    class Dispatch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = op_name(func)
            items = classify(name, args, kwargs, out, backward=phase[0] == "backward")
            if not items:
                return out
            if phase[0] == "backward" and in_backward_of:
                in_backward_of[-1].backward_ops.extend(items)
            elif phase[0] == "backward":
                kind = items[0].kind if items[0].kind != UNPRICED else f"aten.{name}"
                rec = back_rows.get(kind)
                if rec is None:
                    rec = back_rows[kind] = LayerRecord(BACKWARD_NAME, f"{kind}_backward", 0,
                                                       (), ())
                rec.ops.extend(items)
            elif unit:
                unit[0][1].ops.extend(items)
            else:
                owner = names.get(id(stack[-1]), "") if stack else type(model).__name__
                kind = items[0].kind if items[0].kind != UNPRICED else f"aten.{name}"
                t = first_tensor(args)
                records.append(LayerRecord(owner, kind, 0, shape_of(t),
                                           shape_of(first_tensor(out)), items))
            return out

    sdpa = torch.nn.functional.scaled_dot_product_attention

    class Functional(TorchFunctionMode):
        """Groups the ops of one functional attention call into one row."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is not sdpa or unit or phase[0] == "backward":
                return func(*args, **kwargs)
            owner = names.get(id(stack[-1]), "") if stack else ""
            rec = LayerRecord(f"{owner}.{SDPA}" if owner else SDPA, SDPA, 0,
                              shape_of(first_tensor(args)), ())
            records.append(rec)
            unit.append((func, rec))
            try:
                out = func(*args, **kwargs)
            finally:
                unit.clear()
            rec.output_shape = shape_of(first_tensor(out))
            if training:
                track_backward(rec, first_tensor(args), first_tensor(out))
            return out

    was_training = model.training
    try:
        model.train(training)
        params = dict(model.named_parameters())
        state = {k: torch.empty_like(v, device="meta").requires_grad_(
            training and v.requires_grad) for k, v in params.items()}
        state.update({k: torch.empty_like(v, device="meta")
                      for k, v in model.named_buffers()})
        grad = torch.enable_grad() if training else torch.no_grad()
        with grad, Functional(), Dispatch():
            out = torch.func.functional_call(model, state, (x,), strict=False,
                                             tie_weights=True)
            loss = _float_output(out) if training else None
            if loss is not None and loss.requires_grad and backward is not False:
                phase[0] = "backward"
                loss.sum().backward()
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return records + list(back_rows.values())
