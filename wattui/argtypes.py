"""argparse types for numbers, shared by every command (stdlib only: no heavy imports)."""

from __future__ import annotations

import argparse
import math


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value!r}")
    return n


def port_number(value: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        p = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {p}")
    return p


def _finite(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return x


def positive_float(value: str) -> float:
    x = _finite(value)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return x


def nonneg_float(value: str) -> float:
    x = _finite(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive number, got {value!r}")
    return x
