"""Fit wattui's shipped energy predictors from the Getzner data and regenerate the docs tables.

    python scripts/fit_predictors.py [--data DIR] [--out-dir DIR] [--docs PATH|none]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wattui.estimate.refit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
