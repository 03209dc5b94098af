#!/usr/bin/env bash
# Which step learns which object: RESULTS.md, "Small digits and crowded categories", the
# step-order tables. On decomp_mnist 2.0.0's validation split (500 images), every row scored at
# stop threshold 0.6, the one its rows were measured with (the flag file's before them).
#
#   bash experiments/step_order.sh [s2|e2e]     (default: both)
#
# s2: stage 2 ALONE, 5 epochs on the TRUE category maps, once per --matching rule, each
#   scored on the true maps as stage 2 left it.
# e2e: the quick config end to end with --matching=ordered, and the same config with
#   --matching=first_n from that run's stage 1 (--init_category_from, started once its
#   stage 1 has finished), so the pair differs in the matching only.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
Q="--flagfile=configs/mnist_quick.flags --train_examples=5000 --steps_per_epoch=0"
VAL="--split=validation --max_images=500 --stop_threshold=0.6"
if [ "${1:-s2}" = s2 ]; then
  for m in first_n ordered largest_first; do
    python train.py $Q --stages=2 --epochs=5 --learning_rates=0.001 --matching=$m \
      --model_dir=runs/s2_$m > logs/s2_$m.log 2>&1
    python evaluate.py --model_dir=runs/s2_$m --stage=2 --category_source=truth $VAL \
      --output_dir=runs/s2_$m/eval_val_s2 > logs/s2_${m}_eval.log 2>&1
  done
fi
if [ "${1:-e2e}" = e2e ]; then
  python train.py $Q --matching=ordered --model_dir=runs/quick_ordered \
    > logs/quick_ordered.log 2>&1 &
  until [ -f runs/quick_ordered/stage1/final.weights.h5 ]; do sleep 10; done
  python train.py $Q --matching=first_n --init_category_from=runs/quick_ordered --stages=2,3 \
    --epochs=5,5 --learning_rates=0.001,0.0005 --model_dir=runs/quick_firstn_paired \
    > logs/quick_firstn_paired.log 2>&1
  wait
  for d in quick_ordered quick_firstn_paired; do
    python evaluate.py --model_dir=runs/$d $VAL --output_dir=runs/$d/eval_val > logs/${d}_eval.log 2>&1
  done
fi
