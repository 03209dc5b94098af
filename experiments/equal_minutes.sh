#!/usr/bin/env bash
# Accuracy at a cost: the hard-negative baseline trained for about the quick decompNet's
# training minutes, and decompNet trained for about the chosen baseline's, 3 seeds each with
# oneDNN on (RESULTS.md, "Equal minutes"). Each run is read on the first 500 validation images
# and once on the first 1,000 test images, as the headline's runs were. Through
# experiments/seeds.py: resumable, and every run's seeds_train.json keeps its training seconds.
#
#   bash experiments/equal_minutes.sh [baseline|decompnet ...]   (default: both)
#
# The epochs scale each model's own schedule by the ratio of the two training times on the
# machine that chose them (an AMD EPYC with AVX-512, 2 cores): on another CPU kind the minutes
# differ, the ratio much less (seeds_train.json says what each run took).
set -euo pipefail
cd "$(dirname "$0")/.."
Q=configs/mnist_quick.flags
# The quick file's data and rates when these rows were measured.
AS_MEASURED="--train_examples=5000 --steps_per_epoch=0 --learning_rates=0.001,0.001,0.0005"
# The paper's classifier (no box regression), as these rows were measured.
BASE="--model=baseline --dataset=decomp_mnist/bundled --train_examples=5000 --optimizer=adam
      --verbose=2 --learning_rates=0.002 --nobaseline_box_regression"
VAL="--split=validation --max_images=500 --num_sheets=0"
TEST="--split=test --max_images=1000 --num_sheets=0"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(baseline decompnet)
for part in "${parts[@]}"; do
  case $part in
    baseline)  # 17 epochs instead of 4: the quick config's minutes
      python experiments/seeds.py --name=bl_quick_minutes --seeds=0,1,2 --onednn=1 \
        --eval="val3=$VAL --window_steps=3" --eval="test3=$TEST --window_steps=3" \
        --eval="test5=$TEST --window_steps=5" -- $BASE --epochs=17
      ;;
    decompnet)  # epochs 2 / 1 / 1 instead of 7 / 5 / 5: the baseline's minutes
      python experiments/seeds.py --name=quick_baseline_minutes --seeds=0,1,2 \
        --eval="validation=$VAL" --eval="test=$TEST" -- --flagfile=$Q --epochs=2,1,1 \
        --verbose=2 $AS_MEASURED
      ;;
    *) echo "equal_minutes.sh: unknown part $part (baseline, decompnet)" >&2; exit 2 ;;
  esac
done
