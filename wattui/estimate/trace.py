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

from wattui.estimate import pages
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


class StorageLog:
    """Allocations and frees of tensor storage during a trace, in order, each allocation
    with the row whose op made it: ``("alloc", key, nbytes, row)`` and ``("free", key)``
    (what :func:`wattui.estimate.pages.simulate` replays). A storage is freed when its last
    tensor dies, seen before the next op runs."""

    def __init__(self):
        self.events: list[tuple] = []
        self._live: dict[int, Any] = {}
        self._next = 0
        self.paused = False  # inside a fused call: its decomposition's memory is not real
        self.before: list[int] = []  # bytes of the storages that exist before the pass

    def known(self, tensors) -> None:
        """Storages that exist before the pass (input, weights): never allocated by it."""
        for t in tensors:
            self._add(t)
            self.before.append(int(t.untyped_storage().nbytes()))

    def _add(self, t):
        from torch.multiprocessing.reductions import StorageWeakRef

        ref = StorageWeakRef(t.untyped_storage())
        self._next += 1
        self._live[ref.cdata] = (ref, self._next)
        return self._next

    def sweep(self) -> None:
        for cdata in [c for c, (ref, _) in self._live.items() if ref.expired()]:
            self.events.append(("free", self._live.pop(cdata)[1]))

    def outputs(self, out, row, scratch: list[int] = ()) -> None:
        """Log an op's new output storage, after the temporaries (bytes) it allocated and
        freed while running."""
        import torch

        temps = []
        for nbytes in scratch:
            self._next += 1
            temps.append(self._next)
            self.events.append(("alloc", self._next, int(nbytes), row))
        items = out if isinstance(out, (tuple, list)) else (out,)
        for t in items:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            old = self._live.get(st._cdata)
            if old is not None and not old[0].expired():
                continue  # a view or an in-place result: no new memory
            if old is not None:
                self.events.append(("free", self._live.pop(st._cdata)[1]))
            key = self._add(t)
            self.events.append(("alloc", key, int(st.nbytes()), row))
        self.events += [("free", k) for k in temps]


def conv_scratch(args, out) -> list[int]:
    """The temporaries of an ``aten.convolution`` call on a CPU (see
    :func:`wattui.estimate.pages.conv_scratch`)."""
    x, w = args[0], args[1]
    if x.dtype != w.dtype or str(x.dtype) != "torch.float32":
        return []
    return pages.conv_scratch(tuple(x.shape), tuple(w.shape), tuple(out.shape), args[3],
                              args[5], bool(args[6]))


def trace_model(model, example, batch_size: int | None = None, dtype=None,
                training: bool = False, backward: bool | None = None,
                storage: StorageLog | None = None) -> list[LayerRecord]:
    """Run ``model`` once on a meta input and return the rows with their priced op items.
    ``training`` runs it in train mode with gradients and, unless ``backward`` is False,
    traces the backward pass of ``output.sum()`` too. ``storage`` collects the pass's
    allocations and frees."""
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
            if storage is not None and not storage.paused:
                storage.sweep()
            out = func(*args, **kwargs)
            name = op_name(func)
            items = classify(name, args, kwargs, out, backward=phase[0] == "backward")
            row = self.place(name, items, args, out) if items else None
            if storage is not None and not storage.paused:  # ops with no row (empty): the last
                row = row or (records[-1] if records else None)
                scratch = conv_scratch(args, out) if name == "convolution" else []
                storage.outputs(out, row, scratch)
            return out

        def place(self, name, items, args, out) -> LayerRecord:
            """Add the op's items to its row; returns the row."""
            if phase[0] == "backward" and in_backward_of:
                in_backward_of[-1].backward_ops.extend(items)
                return in_backward_of[-1]
            if phase[0] == "backward":
                kind = items[0].kind if items[0].kind != UNPRICED else f"aten.{name}"
                rec = back_rows.get(kind)
                if rec is None:
                    rec = back_rows[kind] = LayerRecord(BACKWARD_NAME, f"{kind}_backward", 0,
                                                       (), ())
                rec.ops.extend(items)
                return rec
            if unit:
                unit[0][1].ops.extend(items)
                return unit[0][1]
            owner = names.get(id(stack[-1]), "") if stack else type(model).__name__
            kind = items[0].kind if items[0].kind != UNPRICED else f"aten.{name}"
            t = first_tensor(args)
            records.append(LayerRecord(owner, kind, 0, shape_of(t),
                                       shape_of(first_tensor(out)), items))
            return records[-1]

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
            if storage is not None:  # a CPU runs one fused kernel: only its output is new
                storage.sweep()
                storage.paused = True
            try:
                out = func(*args, **kwargs)
            finally:
                unit.clear()
                if storage is not None:
                    storage.paused = False
            if storage is not None:
                storage.outputs(out, rec)
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
        if storage is not None:
            storage.known([*state.values(), x])  # built, then fed
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
