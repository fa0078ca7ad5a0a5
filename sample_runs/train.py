#!/usr/bin/env python3
"""The wattui demo training run: a small image classifier trained on the CPU on made-up images.

    python sample_runs/train.py --model cnn --epochs 12
    wattui -- python sample_runs/train.py --model mlp      (watch it live)

The training code lives in ``wattui/demo_train.py`` (so `wattui demo` finds it in any
install); this file only runs it. That module needs torch and nothing else: copy it alone
if you want a standalone script. See ``--help`` for the flags.
"""

import sys
from pathlib import Path


def _load():
    try:
        from wattui import demo_train

        return demo_train
    except ImportError:
        pass
    # Not installed: run the module straight from this clone (wattui/demo_train.py).
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "wattui" / "demo_train.py"
    if not path.is_file():
        sys.exit("train.py: cannot find wattui/demo_train.py; install wattui or run from a clone")
    spec = importlib.util.spec_from_file_location("demo_train", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    sys.exit(_load().main())
