#!/usr/bin/env bash
# Issue 12's stage-2 ablations: the instance network alone, trained and evaluated on the TRUE
# category maps (--instance_input=truth: no stage 1), on the quick config's 5,000 training
# images, scored on the first 500 images of the validation split (the last 500 training
# images, never trained on) by experiments/yardsticks.py.
#   bash experiments/stage2_ablations.sh NAME [NAME ...]
# Results: runs/s2_<name>/yardsticks_validation/decompnet_truth/metrics.json; logs:
# runs/s2_<name>.log (with the training time).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="--flagfile=configs/mnist_quick.flags --stages=2 --epochs=3 --learning_rates=0.001
      --instance_input=truth --verbose=2"
declare -A VARIANT=(
  [hungarian]="--matching=hungarian"
  [first_n]="--matching=first_n"
  [ordered]="--matching=ordered"
  [ordered_dice]="--matching=ordered --dice_weight=1"
  [ordered_fine]="--matching=ordered --instance_fine"
  [ordered_dynamic]="--matching=ordered --instance_decoder=dynamic"
)
for name in "$@"; do
  dir=runs/s2_$name
  # shellcheck disable=SC2086
  { time python train.py $BASE --model_dir="$dir" ${VARIANT[$name]}; } >> "runs/s2_$name.log" 2>&1
  python experiments/yardsticks.py --model_dir="$dir" --rows=decompnet_truth --box_source=mask \
    --mask_threshold=0.3 >> "runs/s2_$name.log" 2>&1
done
