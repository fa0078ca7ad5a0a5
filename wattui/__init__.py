"""wattui: what a training run costs in electricity, and what the accuracy it buys is worth."""

__version__ = "0.1.0"

# The public API for training scripts. It and every module it imports must be standard
# library only: a script that wattui launches gets this file and exactly these modules
# through a shim when its own Python has no wattui (wattui/record/report_shim.py).
CLIENT_MODULES = ("_report", "_measure")

from wattui._measure import Measurement, measure  # noqa: E402,F401
from wattui._report import report, watch  # noqa: E402,F401
