#!/usr/bin/env bash
# The headline with its spread: the quick config's 3 seeds (experiments/spread.sh e2e) and the
# chosen baseline's 3 seeds with oneDNN on (experiments/baseline_tuning.sh chosen), each read on
# the first 1,000 test images once (decompNet with its stored inference settings, the baseline
# at window steps 3 and 5), their mean and range (runs/seeds/*/summary_test*.md), and Figure 4
# with every seed's curve from those evaluations.
#
#   bash experiments/headline_seeds.sh [CHOSEN BASELINE FLAGS...]
#
# The flags are the ones given to `baseline_tuning.sh chosen` (the same runs, not retrained).
set -euo pipefail
cd "$(dirname "$0")/.."
Q=configs/mnist_quick.flags
BASE="--model=baseline --dataset=decomp_mnist/bundled --train_examples=5000 --optimizer=adam
      --verbose=2"
TEST="--split=test --max_images=1000 --num_sheets=0"
# Only the test evaluations are named: the validation summaries (of all 6 baseline runs) stay.
python experiments/seeds.py --name=quick --seeds=0,1,2 --eval="test=$TEST" -- --flagfile=$Q \
  --verbose=2
python experiments/seeds.py --name=bl_chosen --seeds=0,1,2 --onednn=1 \
  --eval="test3=$TEST --window_steps=3" --eval="test5=$TEST --window_steps=5" -- $BASE "$@"
python experiments/figure4.py --out=runs/seeds/fig4_pr_detection.png \
  runs/seeds/quick/seed{0,1,2}/eval_test runs/seeds/bl_chosen/seed{0,1,2}_onednn1/eval_test3 \
  runs/seeds/bl_chosen/seed{0,1,2}_onednn1/eval_test5
