"""The sample runs' models as factories, for `wattui estimate`:

    wattui estimate sample_runs/models.py:cnn --input-shape 3,16,16 --batch-size 64 --samples 20000
"""

from wattui.demo_train import build_model


def mlp():
    return build_model("mlp")


def cnn():
    return build_model("cnn")


def wide_cnn():
    return build_model("wide-cnn")
