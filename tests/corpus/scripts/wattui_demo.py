"""wattui's own demo training run (wattui/demo_train.py), unchanged, with its accuracies noted."""

import sys

from _truth import write_truth

import wattui.demo_train as demo

EPOCHS = 8
history = []
_evaluate = demo.evaluate


def evaluate(*args, **kwargs):
    acc = _evaluate(*args, **kwargs)
    history.append(acc)
    return acc


demo.evaluate = evaluate
rc = demo.main(
    ["--epochs", str(EPOCHS), "--train-size", "3000", "--val-size", "300", "--model", "mlp", "--lr", "0.01"]
)
write_truth(
    history=history,
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_accuracy",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="demo_train.evaluate's return values",
    notes="the last line is a summary (best val_accuracy), not a new accuracy",
)
sys.exit(rc)
