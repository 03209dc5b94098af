#!/usr/bin/env bash
# The spread behind tests/test_quick_config.py's reference: its short run of
# configs/mnist_quick.flags (decomp_mnist/small, 400 training images, epochs 3 / 4 / 2) for
# seeds 0-2 with oneDNN on and off, scored on the first 200 validation images (digits that no
# training image uses), end to end and on the TRUE category maps.
#
#   bash experiments/quick_guard_spread.sh [OUT_DIR]      (default runs/quick_guard)
#
# Prints one line per run; the test's reference band is the min and max of these lines.
# RUNS="seed:oneDNN:[untrained] ..." picks runs (default: all seven below).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/quick_guard}
mkdir -p "$OUT"
SHORT="--flagfile=configs/mnist_quick.flags --dataset=decomp_mnist/small --train_examples=400
       --steps_per_epoch=0 --validation_examples=200 --epochs=3,4,2 --checkpoint_steps=0 --verbose=2"
EVAL="--split=validation --max_images=200 --num_sheets=0"
# The last line: a network whose instance stages learned nothing (epochs 3 / 0 / 0), the floor
# that a guard must stay well above.
for run in ${RUNS:-0:1: 0:0: 1:1: 1:0: 2:1: 2:0: 0:1:untrained}; do
  IFS=: read -r seed onednn untrained <<< "$run"
  dir="$OUT/seed${seed}_onednn${onednn}${untrained:+_untrained}"
  export TF_ENABLE_ONEDNN_OPTS=$onednn
  python train.py $SHORT --seed="$seed" --model_dir="$dir" ${untrained:+--epochs=3,0,0} \
    > "$dir.log" 2>&1
  python evaluate.py --model_dir="$dir" $EVAL >> "$dir.log" 2>&1
  python evaluate.py --model_dir="$dir" $EVAL --category_source=truth \
    --output_dir="$dir/eval_truth" >> "$dir.log" 2>&1
  python - "$dir" <<'PY'
import json, sys
import numpy as np
d = sys.argv[1]
def read(path):
    m = json.load(open(path))
    ap = np.mean([r["ap_voc"] for r in m["detection"]["iou_0.5"].values()])
    return ap, m["counting"]["accuracy"]
e2e = read(f"{d}/eval_validation/metrics.json")
truth = read(f"{d}/eval_truth/metrics.json")
print(f"{d}: end to end AP50 {e2e[0]:.3f} counting {e2e[1]:.3f} | "
      f"true maps AP50 {truth[0]:.3f} counting {truth[1]:.3f}", flush=True)
PY
done
