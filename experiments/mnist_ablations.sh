#!/usr/bin/env bash
# Issue 5's ablation table: every variant trains stage 2 (2 epochs, ~15 min on 2 cores) from the
# SAME stage-1 category network (the quick config's, runs/mnist_quick), on the same 5,000
# bundled-MNIST training images, then is evaluated on the first 500 test images.
#   bash experiments/mnist_ablations.sh [name ...]     (default: every variant below)
# Results: runs/abl_<name>/eval_test/metrics.json; logs: runs/abl_<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f runs/mnist_quick/stage1/final.weights.h5 ] || python train.py --flagfile=configs/mnist_quick.flags

declare -A VARIANT=(
  [stop]="--stop_head"
  [stop_size]="--stop_head --size_weighting"
  [stop_bce]="--stop_head --instance_loss=bce --instance_activation=sigmoid"
  [stop_lstm]="--stop_head --instance_recurrence=lstm"
  # 32 state channels on the 7x7 grid: about the FC layers' cost per step.
  [stop_convlstm]="--stop_head --instance_recurrence=convlstm --instance_units=32"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(stop stop_size stop_bce stop_lstm stop_convlstm)
for name in "${names[@]}"; do
  dir=runs/abl_$name
  # shellcheck disable=SC2086
  { time python train.py --flagfile=configs/mnist_quick.flags --model_dir="$dir" \
      --init_category_from=runs/mnist_quick --stages=2 --epochs=2 --learning_rates=0.001 \
      --verbose=2 ${VARIANT[$name]}; } > "runs/abl_$name.log" 2>&1
  python evaluate.py --model_dir="$dir" --max_images=500 --num_sheets=1 >> "runs/abl_$name.log" 2>&1
done
