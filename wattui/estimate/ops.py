"""ATen operators as priced op kinds, with the features their predictors need (no torch import).

:func:`classify` turns one dispatched call (``aten.convolution.default`` and its meta-tensor
arguments) into :class:`OpCall` items: a kind such as ``conv2d_depthwise`` or ``batch_norm``,
a feature dict (``macs``, ``elements``, configuration values) and a multiplier. Views and
other metadata-only ops give nothing (free); an operator it does not know gives one
``OpCall`` of kind ``UNPRICED`` so that the total can say it is partial.

Backward operators (training) are mapped onto the forward kind they mirror, with a documented
multiplier (``BACKWARD``): they are priced, but by mapping, not by their own measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from wattui.estimate import macs as M

UNPRICED = "unpriced"

# metadata-only or allocation-only: no compute of their own
FREE = frozenset("""
view _unsafe_view reshape _reshape_alias permute transpose t expand expand_as unsqueeze squeeze
split split_with_sizes unsafe_split unsafe_split_with_sizes chunk unbind select slice narrow
as_strided detach alias empty empty_like empty_strided new_empty new_empty_strided lift_fresh
flatten unflatten view_as diagonal movedim numpy_T _has_compatible_shallow_copy_type
resolve_conj resolve_neg set_ dim size stride is_same_size _local_scalar_dense item
""".split())
COPY = frozenset("""
clone copy_ _to_copy contiguous cat stack fill_ zero_ zeros ones full zeros_like ones_like
full_like new_zeros new_ones new_full constant_pad_nd index_select gather repeat masked_fill
masked_fill_ where scalar_tensor arange _unsafe_index select_backward slice_backward
select_scatter slice_scatter index_put index_put_ index_add index_add_ scatter scatter_add
""".split())
ADD = frozenset("add add_ sub sub_ rsub addcmul addcmul_ addcdiv addcdiv_ lerp lerp_".split())
MUL = frozenset("mul mul_ div div_ native_dropout bernoulli bernoulli_".split())
UNARY = frozenset("""
hardtanh hardtanh_ clamp clamp_ clamp_min clamp_min_ clamp_max leaky_relu leaky_relu_ elu elu_
hardswish hardswish_ hardsigmoid hardsigmoid_ threshold threshold_ neg abs exp exp_ log sqrt
rsqrt pow pow_ reciprocal sin cos erf mish mish_ softplus gt lt ge le eq ne
""".split())
NAMED = {"relu": "relu", "relu_": "relu", "gelu": "gelu", "gelu_": "gelu", "silu": "silu",
         "silu_": "silu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
         "tanh_": "tanh", "_softmax": "softmax", "_safe_softmax": "softmax",
         "_log_softmax": "softmax", "embedding": "embedding"}
REDUCE = frozenset("""
mean sum amax amin max min var var_mean std _adaptive_avg_pool2d adaptive_avg_pool2d
avg_pool2d avg_pool1d argmax argmin norm linalg_vector_norm
""".split())
NORM = {"native_batch_norm": "batch_norm", "_native_batch_norm_legit": "batch_norm",
        "_native_batch_norm_legit_no_training": "batch_norm",
        "_native_batch_norm_legit_functional": "batch_norm",
        "native_layer_norm": "layer_norm", "native_group_norm": "group_norm"}
# backward op -> (forward kind, multiplier); "conv" and "maxpool2d" take their config from
# the saved input, the others are priced on the gradient's element count
BACKWARD = {
    "threshold_backward": ("relu", 1.0), "hardtanh_backward": ("unary", 1.0),
    "sigmoid_backward": ("sigmoid", 1.0), "tanh_backward": ("tanh", 1.0),
    "silu_backward": ("silu", 1.0), "gelu_backward": ("gelu", 1.0),
    "hardswish_backward": ("unary", 1.0), "leaky_relu_backward": ("unary", 1.0),
    "_softmax_backward_data": ("softmax", 1.0), "_log_softmax_backward_data": ("softmax", 1.0),
    "native_batch_norm_backward": ("batch_norm", 2.0),
    "native_layer_norm_backward": ("layer_norm", 2.0),
    "native_group_norm_backward": ("group_norm", 2.0),
    "avg_pool2d_backward": ("reduce", 1.0), "_adaptive_avg_pool2d_backward": ("reduce", 1.0),
    "embedding_dense_backward": ("embedding", 1.0), "native_dropout_backward": ("mul", 1.0),
    "max_pool2d_with_indices_backward": ("maxpool2d", 1.0),
}
BACKWARD_NOTE = ("backward: convolution_backward = one forward conv per gradient it computes "
                 "(input, weight) plus a reduction for the bias; matmuls and elementwise ops "
                 "priced as themselves; activation/norm/pool backward ops priced as their "
                 "forward op (norms x2)")


@dataclass
class OpCall:
    """One priced unit of work of a dispatched aten call."""

    kind: str  # predictor kind, or UNPRICED
    cfg: dict[str, Any] = field(default_factory=dict)
    times: float = 1.0  # multiplier on the predicted cost
    aten: str = ""  # the aten op it came from
    backward: bool = False

    @property
    def macs(self) -> int:
        return int(self.cfg.get("macs", 0) * self.times)


def shape_of(x) -> tuple[int, ...]:
    """A tensor's shape as ints (``()`` for anything without one)."""
    return tuple(int(s) for s in x.shape) if hasattr(x, "shape") else ()


def first_tensor(obj):
    """The first tensor in ``obj`` (a tensor, or nested tuples, lists and dicts), or None."""
    if hasattr(obj, "shape"):
        return obj
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = first_tensor(o)
            if t is not None:
                return t
    return None


def _elements_cfg(shape: tuple[int, ...], rows_first: bool = True) -> dict[str, Any]:
    n = prod(shape) if shape else 1
    batch = shape[0] if rows_first and len(shape) > 1 else 1
    return {"elements": n, "batch_size": batch, "input_size": n // max(batch, 1), "macs": 0,
            "bytes": M.FLOAT_BYTES * 2 * n}


def _ints(v, n: int = 2) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        vals = [int(x) for x in v] or [0]
        return tuple(vals[i] if i < len(vals) else vals[-1] for i in range(n))
    return (int(v),) * n


def conv_kind(groups: int, c_in: int, w_shape: tuple[int, ...], transposed: bool) -> str:
    """``conv2d`` (dense), ``conv2d_depthwise`` (one input channel per group, all channels
    grouped), ``conv2d_grouped``; other ranks and transposed convolutions are unpriced."""
    if transposed or len(w_shape) != 4:
        return UNPRICED
    if groups == 1:
        return "conv2d"
    if groups == c_in and w_shape[1] == 1:
        return "conv2d_depthwise"
    return "conv2d_grouped"


def conv_cfg(x_shape, w_shape, out_shape, stride, padding, groups) -> dict[str, Any]:
    batch = x_shape[0] if len(x_shape) == 4 else 1
    c_in, c_out = x_shape[-3], w_shape[0]
    k = (w_shape[-2], w_shape[-1])
    out_hw = out_shape[-2:] if len(out_shape) >= 2 else (1, 1)
    s, p = _ints(stride), _ints(padding)
    return {"batch_size": batch, "image_size": x_shape[-2], "kernel_size": k[0],
            "in_channels": c_in, "out_channels": c_out, "stride": s[0], "padding": p[0],
            "groups": groups, "macs": M.conv2d_macs(batch, c_in, c_out, k, out_hw, groups),
            "elements": prod(out_shape),
            "bytes": M.FLOAT_BYTES * (prod(x_shape) + prod(w_shape) + prod(out_shape)),
            "act_bytes": M.FLOAT_BYTES * (prod(x_shape) + prod(out_shape))}


def pool_cfg(x_shape, out_shape, kernel, stride, padding) -> dict[str, Any]:
    batch = x_shape[0] if len(x_shape) == 4 else 1
    k = _ints(kernel)
    s = _ints(stride) if stride else k
    return {"batch_size": batch, "image_size": x_shape[-2], "kernel_size": k[0],
            "in_channels": x_shape[-3], "stride": s[0], "padding": _ints(padding)[0],
            "macs": M.maxpool2d_macs(batch, x_shape[-3], k, out_shape[-2:]),
            "elements": prod(out_shape),
            "bytes": M.FLOAT_BYTES * (prod(x_shape) + prod(out_shape))}


def linear_cfg(rows: int, n_in: int, n_out: int, bias: bool) -> dict[str, Any]:
    macs = M.linear_macs(rows, n_in, n_out) if bias else rows * n_in * n_out
    return {"macs": macs, "batch_size": rows, "input_size": n_in, "output_size": n_out,
            "elements": rows * n_out, "bytes": M.matmul_bytes(1, rows, n_in, n_out),
            "act_bytes": M.FLOAT_BYTES * rows * (n_in + n_out)}


def matmul_cfg(a_shape, b_shape) -> dict[str, Any]:
    batch = prod(a_shape[:-2]) if len(a_shape) > 2 else 1
    n, k, m = a_shape[-2], a_shape[-1], b_shape[-1]
    return {"macs": batch * n * k * m, "batch_size": batch * n, "input_size": k,
            "output_size": m, "elements": batch * n * m, "matrices": batch,
            "bytes": M.matmul_bytes(batch, n, k, m)}


def classify(name: str, args: tuple, kwargs: dict, out, backward: bool = False) -> list[OpCall]:
    """Price-able items of one aten call. ``name`` is the overload packet name
    (``convolution``, ``add_``...). Empty list: free."""
    base = name
    out_t = first_tensor(out)
    out_shape = shape_of(out_t)
    ops: list[OpCall] = []

    def add(kind, cfg, times=1.0):
        ops.append(OpCall(kind, cfg, times, name, backward))

    if base in FREE:
        return ops
    if base == "convolution":
        x, w = shape_of(args[0]), shape_of(args[1])
        stride, padding = args[3], args[4]
        transposed, groups = bool(args[6]), int(args[8])
        kind = conv_kind(groups, x[-3] if len(x) >= 3 else 0, w, transposed)
        if kind == UNPRICED:
            add(UNPRICED, {"elements": prod(out_shape)})
        else:
            add(kind, conv_cfg(x, w, out_shape, stride, padding, groups))
    elif base == "convolution_backward":
        grad, x, w = (shape_of(a) for a in args[:3])
        stride, padding, transposed, groups = args[4], args[5], bool(args[7]), int(args[9])
        mask = list(args[10]) if len(args) > 10 else [True, True, True]
        kind = conv_kind(groups, x[-3] if len(x) >= 3 else 0, w, transposed)
        n = int(bool(mask[0])) + int(bool(mask[1]))
        if kind == UNPRICED:
            add(UNPRICED, {"elements": prod(x)})
        elif n:
            add(kind, conv_cfg(x, w, grad, stride, padding, groups), float(n))
        if len(mask) > 2 and mask[2]:
            add("reduce", _elements_cfg(grad))
    elif base in ("addmm", "mm", "addmv", "mv"):
        a, b = (shape_of(args[1]), shape_of(args[2])) if base.startswith("add") else \
            (shape_of(args[0]), shape_of(args[1]))
        n_out = b[-1] if len(b) == 2 else 1
        add("linear", linear_cfg(a[0] if len(a) == 2 else 1, a[-1], n_out,
                                 base.startswith("add")))
    elif base in ("bmm", "baddbmm", "matmul"):
        a, b = (shape_of(args[1]), shape_of(args[2])) if base == "baddbmm" else \
            (shape_of(args[0]), shape_of(args[1]))
        add("matmul", matmul_cfg(a, b))
    elif base in ("max_pool2d", "max_pool2d_with_indices"):
        x = shape_of(args[0])
        kernel = args[1]
        stride = args[2] if len(args) > 2 else kwargs.get("stride")
        padding = args[3] if len(args) > 3 else kwargs.get("padding", 0)
        add("maxpool2d", pool_cfg(x, out_shape, kernel, stride, padding))
    elif base == "max_pool2d_with_indices_backward":
        x = shape_of(args[1])
        add("maxpool2d", pool_cfg(x, shape_of(args[0]), args[2], args[3], args[4]))
    elif base in NORM:
        add(NORM[base], _elements_cfg(shape_of(args[0])))
    elif base in NAMED:
        cfg = _elements_cfg(out_shape)
        if NAMED[base] == "relu":
            cfg["macs"] = cfg["elements"]  # the seed's count: one per element
        add(NAMED[base], cfg)
    elif base in REDUCE:
        add("reduce", _elements_cfg(shape_of(args[0])))
    elif base in ADD:
        add("add", _elements_cfg(out_shape))
    elif base in MUL:
        add("mul", _elements_cfg(out_shape))
    elif base in UNARY:
        add("unary", _elements_cfg(out_shape))
    elif base in COPY:
        add("copy", _elements_cfg(out_shape))
    elif base in BACKWARD:
        kind, times = BACKWARD[base]
        add(kind, _elements_cfg(shape_of(args[0])), times)
    elif base.startswith("_scaled_dot_product") or base == "scaled_dot_product_attention":
        ops.extend(sdpa_parts(shape_of(args[0]), shape_of(args[1]), shape_of(args[2]), name))
    else:
        add(UNPRICED, {"elements": prod(out_shape) if out_shape else 0})
    return ops


def sdpa_parts(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...],
               aten: str = "") -> list[OpCall]:
    """A fused attention call as its parts: QK^T and scores@V matmuls, softmax on scores."""
    lead = q[:-2]
    mats = prod(lead) if lead else 1
    scores = (*lead, q[-2], k[-2])
    return [OpCall("matmul", matmul_cfg((*lead, q[-2], q[-1]), (*lead, q[-1], k[-2])), 1.0,
                   aten),
            OpCall("softmax", _elements_cfg(scores), 1.0, aten),
            OpCall("matmul", matmul_cfg((*lead, q[-2], k[-2]), (*lead, k[-2], v[-1])), 1.0,
                   aten)] if mats else []


def lstm_parts(module, x_shape: tuple[int, ...]) -> list[OpCall]:
    """An ``nn.LSTM`` call as PyTorch's CPU runs it: one fused kernel per layer and direction
    (oneDNN), not the per-step cell ops the meta device decomposes it into."""
    if len(x_shape) == 3:
        batch, seq = (x_shape[0], x_shape[1]) if module.batch_first else (x_shape[1], x_shape[0])
    elif len(x_shape) == 2:
        batch, seq = 1, x_shape[0]
    else:
        return []
    h = module.hidden_size
    dirs = 2 if module.bidirectional else 1
    out: list[OpCall] = []
    n_in = module.input_size
    for _ in range(module.num_layers):
        for _ in range(dirs):
            out.append(OpCall("lstm", lstm_cfg(batch, seq, n_in, h), 1.0, "lstm"))
        n_in = h * dirs
    return out


def lstm_cfg(batch: int, seq: int, n_in: int, hidden: int) -> dict[str, Any]:
    """Gate matmuls of one LSTM layer: seq x batch x 4H x (input + H) MACs."""
    return {"batch_size": batch, "seq_len": seq, "input_size": n_in, "hidden_size": hidden,
            "macs": seq * batch * 4 * hidden * (n_in + hidden),
            "elements": seq * batch * hidden,
            "bytes": M.FLOAT_BYTES * (4 * hidden * (n_in + hidden) + seq * batch * (n_in + 2 * hidden)),
            "act_bytes": M.FLOAT_BYTES * seq * batch * (n_in + 2 * hidden)}
