"""wattui: what a training run costs in electricity, and what the accuracy it buys is worth."""

__version__ = "0.1.0"

from wattui._report import report, watch  # noqa: E402,F401
