#!/usr/bin/env bash
# Re-record the sample sessions in sample_runs/store with one command:
#
#     sample_runs/record_samples.sh              (8-10 minutes on 2 CPU cores)
#
# Each session is the demo training run (sample_runs/train.py) of one model for a number of
# epochs, recorded headless by the real recorder with ONE SIMULATED GPU: the training runs on
# the CPU, and the GPU power is the simulated curve, so GPU energy grows with the run's
# duration. Set PYTHON to pick an interpreter (default: python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
STORE=sample_runs/store
NEW=sample_runs/store.new
EPOCHS=${EPOCHS:-"5 15"}
MODELS=${MODELS:-"mlp cnn wide-cnn"}

rm -rf "$NEW"
for epochs in $EPOCHS; do
    for model in $MODELS; do
        echo "== $model, $epochs epochs" >&2
        # --threads 1 (the default) leaves the second core to the recorder.
        "$PY" -m wattui record --simulate 1 --store "$NEW" \
            --name "$model $epochs epochs" --tag sample --tag "$model" \
            -- "$PY" sample_runs/train.py --model "$model" --epochs "$epochs" --threads 1
    done
done
rm -rf "$NEW/recorder-logs"
rm -rf "$STORE"
mv "$NEW" "$STORE"
"$PY" -m wattui sessions --store "$STORE"
du -sh "$STORE"
