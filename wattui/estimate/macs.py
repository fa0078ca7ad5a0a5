"""MAC counts per layer, with the formulas of Getzner et al. (pure Python, no torch).

``H_out = floor((H + 2p - k) / s) + 1``. Conv2d ``B*H_out^2*C_out*(k^2*C_in + 1)``,
Linear ``B*(in*out + out)``, MaxPool2d ``B*C*k^2*H_out^2/2``, ReLU ``B*N``,
Sigmoid/Tanh/Softmax 0. Square images and kernels, as in the seed data; the
non-square forms below reduce to them.
"""

from __future__ import annotations

from math import prod


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a conv/pool window along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_macs(batch: int, c_in: int, c_out: int, kernel: tuple[int, int],
                out_hw: tuple[int, int], groups: int = 1) -> int:
    """B * H_out * W_out * C_out * (k_h * k_w * C_in / groups + 1)."""
    return batch * out_hw[0] * out_hw[1] * c_out * (kernel[0] * kernel[1] * c_in // groups + 1)


def linear_macs(rows: int, n_in: int, n_out: int) -> int:
    """rows * (in*out + out); rows is the batch times any leading dimensions."""
    return rows * (n_in * n_out + n_out)


def maxpool2d_macs(batch: int, channels: int, kernel: tuple[int, int],
                   out_hw: tuple[int, int]) -> int:
    """B * C * k_h * k_w * H_out * W_out / 2 (integer, as in the seed code)."""
    return batch * channels * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] // 2


def elementwise_macs(shape: tuple[int, ...]) -> int:
    """One operation per element (ReLU in the seed; also used for pooling reads)."""
    return prod(shape)


def matmul_macs(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of a batched matmul ``(..., n, k) @ (..., k, m)``."""
    n, k = a_shape[-2], a_shape[-1]
    m = b_shape[-1]
    batch = prod(a_shape[:-2]) if len(a_shape) > 2 else 1
    return batch * n * k * m


FLOAT_BYTES = 4  # float32: the memory traffic features assume it


def matmul_bytes(matrices: int, n: int, k: int, m: int) -> int:
    """Bytes read and written by ``matrices`` products (n, k) @ (k, m): both operands and the
    result, once each (the memory-traffic side of a roofline)."""
    return FLOAT_BYTES * matrices * (n * k + k * m + n * m)
