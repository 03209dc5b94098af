#!/usr/bin/env bash
# The hard-negative baseline tuned as decompNet was: each row of RESULTS.md's "The baseline's
# training" at 2 seeds on the first 500 validation images (windows at step 3), then the chosen
# schedule at 3 seeds x oneDNN off / on. Through experiments/seeds.py, resumable.
#
#   bash experiments/baseline_tuning.sh [rows|chosen] [CHOSEN FLAGS...]
#
# rows: every row below; chosen: the chosen schedule (its train.py flags after the word);
# decay: the chosen rate halved after every epoch, at 3 seeds x oneDNN off / on (its spread
# against the chosen schedule's: a constant rate ends on noisy weights); regression: the chosen
# schedule with R-CNN's box regression, at 3 seeds x oneDNN off / on (most of the baseline's
# mistakes, and its spread, are windows at IoU 0.1-0.5 with their digit); regression_decay: the
# same with the rate halved after every epoch (its last weights less noisy), 3 seeds x oneDNN.
set -euo pipefail
cd "$(dirname "$0")/.."
# The paper's classifier (no box regression) unless a part says otherwise: the rows' runs.
BASE="--model=baseline --dataset=decomp_mnist/bundled --train_examples=5000 --optimizer=adam
      --verbose=2 --nobaseline_box_regression"
EVAL="val3=--split=validation --max_images=500 --window_steps=3 --num_sheets=0"

row() {  # name, extra train.py flags
  python experiments/seeds.py --name="$1" --seeds="${SEEDS:-0,1}" --eval="$EVAL" -- \
    $BASE "${@:2}"
}

part=${1:-rows}
case $part in
  rows)
    row bl_e4 --epochs=4 --learning_rates=0.001
    row bl_e2 --epochs=2 --learning_rates=0.001
    row bl_e4_lr0005 --epochs=4 --learning_rates=0.0005
    row bl_e4_lr002 --epochs=4 --learning_rates=0.002
    row bl_e4_bg025 --epochs=4 --learning_rates=0.001 --background_share=0.25
    row bl_e4_bg075 --epochs=4 --learning_rates=0.001 --background_share=0.75
    row bl_e4_min8 --epochs=4 --learning_rates=0.001 --window_min_size=8
    row bl_e6 --epochs=6 --learning_rates=0.001
    ;;
  chosen)
    python experiments/seeds.py --name=bl_chosen --seeds=0,1,2 --onednn=0,1 --eval="$EVAL" \
      -- $BASE "${@:2}"
    ;;
  decay)
    python experiments/seeds.py --name=bl_decay --seeds=0,1,2 --onednn=0,1 --eval="$EVAL" \
      -- $BASE --epochs=4 --learning_rates=0.002 --lr_decay=0.5
    ;;
  regression)
    python experiments/seeds.py --name=bl_regression --seeds=0,1,2 --onednn=0,1 \
      --eval="$EVAL" -- $BASE --epochs=4 --learning_rates=0.002 --baseline_box_regression
    ;;
  regression_decay)
    python experiments/seeds.py --name=bl_regression_decay --seeds=0,1,2 --onednn=0,1 \
      --eval="$EVAL" -- $BASE --epochs=4 --learning_rates=0.002 --lr_decay=0.5 \
      --baseline_box_regression
    ;;
  *) echo "baseline_tuning.sh: unknown part $part (rows, chosen, decay, regression," \
       "regression_decay)" >&2
     exit 2 ;;
esac
