#!/usr/bin/env bash
# The headline with its spread: the quick config's 3 seeds (experiments/spread.sh e2e_centers) and
# the baseline's 3 seeds with oneDNN on, with box regression (experiments/baseline_tuning.sh
# regression_decay) and without (the paper's classifier: baseline_tuning.sh chosen), each read on
# the first 1,000 test images once (decompNet with its stored inference settings, the baselines
# at window steps 3 and 5), their mean and range (runs/seeds/*/summary_test*.md), and Figure 4
# with every seed's curve from those evaluations (the paper's baseline; with regression in
# runs/seeds/fig4_regression_pr_detection.png).
#
#   bash experiments/headline_seeds.sh
#
# The baselines' flags are the ones baseline_tuning.sh trained them with (not retrained).
set -euo pipefail
cd "$(dirname "$0")/.."
Q=configs/mnist_quick.flags
BASE="--model=baseline --dataset=decomp_mnist/bundled --train_examples=5000 --optimizer=adam
      --verbose=2"
TEST="--split=test --max_images=1000 --num_sheets=0"
# Only the test evaluations are named: the validation summaries (of all 6 baseline runs) stay.
python experiments/seeds.py --name=quick_centers --seeds=0,1,2 --eval="test=$TEST" -- \
  --flagfile=$Q --verbose=2
STEPS=(--eval="test3=$TEST --window_steps=3" --eval="test5=$TEST --window_steps=5")
python experiments/seeds.py --name=bl_chosen --seeds=0,1,2 --onednn=1 "${STEPS[@]}" -- $BASE \
  --epochs=4 --learning_rates=0.002 --nobaseline_box_regression
python experiments/seeds.py --name=bl_regression_decay --seeds=0,1,2 --onednn=1 "${STEPS[@]}" -- \
  $BASE --epochs=4 --learning_rates=0.002 --lr_decay=0.5 --baseline_box_regression
python experiments/figure4.py --out=runs/seeds/fig4_pr_detection.png \
  runs/seeds/quick_centers/seed{0,1,2}/eval_test runs/seeds/bl_chosen/seed{0,1,2}_onednn1/eval_test3 \
  runs/seeds/bl_chosen/seed{0,1,2}_onednn1/eval_test5
python experiments/figure4.py --out=runs/seeds/fig4_regression_pr_detection.png \
  runs/seeds/quick_centers/seed{0,1,2}/eval_test runs/seeds/bl_regression_decay/seed{0,1,2}_onednn1/eval_test3 \
  runs/seeds/bl_regression_decay/seed{0,1,2}_onednn1/eval_test5
