"""Reading a number out of JSON or a record: what counts as one."""

from __future__ import annotations

import math


def finite_float(x: object) -> float | None:
    """``x`` as a finite float, or None: bools, strings, None, NaN, infinities and ints too
    big for a float are not numbers here."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        f = float(x)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def is_finite_number(x: object) -> bool:
    """Whether :func:`finite_float` reads ``x`` as a number."""
    return finite_float(x) is not None
