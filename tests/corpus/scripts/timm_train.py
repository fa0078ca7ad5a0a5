"""timm's real train.py (github.com/huggingface/pytorch-image-models), run unchanged in this
process on a tiny generated image folder; truth from the summary.csv it writes each epoch.

The path of train.py comes from $CORPUS_TIMM_TRAIN (scripts/capture_corpus.py --timm-train).
"""

import csv
import os
import runpy
import sys

from _images import make_image_folder
from _truth import write_truth

EPOCHS = 4
train_py = os.environ["CORPUS_TIMM_TRAIN"]
make_image_folder("data", {"train": 40, "validation": 12})
sys.argv = [
    "train.py", "--data-dir", "data", "--model", "resnet18", "--num-classes", "4",
    "--img-size", "32", "--epochs", str(EPOCHS), "--warmup-epochs", "0", "-b", "16",
    "--lr", "0.05", "--workers", "0", "--no-prefetcher", "--device", "cpu",
    "--output", "out", "--experiment", "run", "--log-interval", "5", "--checkpoint-hist", "1",
    "--seed", "0",
]
sys.path.insert(0, os.path.dirname(train_py))
try:
    runpy.run_path(train_py, run_name="__main__")
finally:
    sys.stdout.flush()
    sys.stderr.flush()

with open(os.path.join("out", "run", "summary.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
write_truth(
    history=[float(r["eval_top1"]) / 100 for r in rows],
    total_epochs=EPOCHS,
    epochs_done=len(rows),
    epoch_base=0,
    accuracy_key="Acc@1",
    accuracy_scale="percent",
    accuracy_stream="stderr",
    source="timm train.py's output/summary.csv (eval_top1 per epoch)",
    notes="logging on stderr; 'Train: N' epochs are 0-based; '*** Best metric' and the --result JSON "
    "(sorted by metric) at the end are summaries",
    summary_csv=rows,
)
