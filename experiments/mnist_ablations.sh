#!/usr/bin/env bash
# Issue 5's ablation table: every variant trains stage 2 (2 epochs, 7-21 min on 2 cores) from
# the SAME stage-1 category network (runs/mnist_quick, trained by the quick config's stage 1),
# on the same 5,000 bundled-MNIST training images, then is evaluated on the first 500 test
# images.
#   bash experiments/mnist_ablations.sh [name ...]     (default: every variant below)
# Results: runs/abl_<name>/eval_test{,_maskbox}/metrics.json; logs: runs/abl_<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f runs/mnist_quick/stage1/final.weights.h5 ] || python train.py --flagfile=configs/mnist_quick.flags

# The ablations' base: configs/mnist_quick.flags as it was before issue 5 (T = 11, 50x50 maps
# from the cell, no stop head, no gate); each variant adds its flags to it.
BASE="--steps=11 --instance_pool=1 --noinstance_gated --nostop_head"
declare -A VARIANT=(
  [stop]="--stop_head"
  # Instance maps at 25x25 (category maps pooled by 2): ~4x cheaper decoder and box layer.
  [stop_pool2]="--stop_head --instance_pool=2"
  # Section 5's options, each on top of the stop head and the 25x25 instance maps.
  [pool2_size]="--stop_head --instance_pool=2 --size_weighting"
  [pool2_bce]="--stop_head --instance_pool=2 --instance_loss=bce --instance_activation=sigmoid"
  [pool2_lstm]="--stop_head --instance_pool=2 --instance_recurrence=lstm"
  # 32 state channels on the 4x4 bottleneck grid.
  [pool2_convlstm]="--stop_head --instance_pool=2 --instance_recurrence=convlstm --instance_units=32"
  # Not in the paper: each map a gated selection of the category map.
  [pool2_gated]="--stop_head --instance_pool=2 --instance_gated"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(stop stop_pool2 pool2_size pool2_bce pool2_lstm pool2_convlstm pool2_gated)
for name in "${names[@]}"; do
  dir=runs/abl_$name
  # shellcheck disable=SC2086
  { time python train.py --flagfile=configs/mnist_quick.flags --model_dir="$dir" \
      --init_category_from=runs/mnist_quick --stages=2 --epochs=2 --learning_rates=0.001 \
      --verbose=2 $BASE ${VARIANT[$name]}; } >> "runs/abl_$name.log" 2>&1
  python evaluate.py --model_dir="$dir" --max_images=500 --num_sheets=1 >> "runs/abl_$name.log" 2>&1
  # The same network with boxes read off its maps (--box_source=mask).
  python evaluate.py --model_dir="$dir" --max_images=500 --num_sheets=0 --box_source=mask \
    --output_dir="$dir/eval_test_maskbox" >> "runs/abl_$name.log" 2>&1
done
