#!/usr/bin/env bash
# Every test-split figure the README and RESULTS.md report for the headline quick model, from
# one trained model dir and the hard-negative baseline: the Figure 4 comparison, the
# yardsticks, and serving parity (SavedModel, TFLite float32 and int8 weights). Each reads the
# same first 1,000 test images with the model dir's stored inference settings.
#
#   bash experiments/headline.sh [MODEL_DIR] [BASELINE_DIR]
#       (defaults: runs/mnist_quick runs/hn4; both must be trained)
#
# The baseline: python train.py --model=baseline --dataset=decomp_mnist/bundled
#   --train_examples=5000 --epochs=4 --optimizer=adam --learning_rates=0.001 --model_dir=runs/hn4
#   --nobaseline_box_regression (runs/hn4 predates the box regression)
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-runs/mnist_quick}
B=${2:-runs/hn4}
E=exported/decompnet
TEST="--split=test --max_images=1000"
for d in "$M" "$B"; do
  [ -f "$d/config.json" ] || { echo "headline.sh: $d has no config.json; train it first" >&2; exit 1; }
done
python evaluate.py --compare="$M,$B" --window_steps=3,5 $TEST --output_dir=runs/compare_fig4
python experiments/yardsticks.py --model_dir="$M" $TEST
python experiments/yardsticks.py --model_dir="$M" $TEST --stage=2 --rows=decompnet_truth \
  --output_dir="$M/yardsticks_test_stage2"
python export.py --model_dir="$M" --export_dir="$E"
python evaluate.py --model_dir="$M" --saved_model="$E/1" $TEST --output_dir="$M/eval_test_savedmodel"
python evaluate.py --model_dir="$M" --tflite="$E/model.tflite" $TEST --output_dir="$M/eval_test_tflite"
python evaluate.py --model_dir="$M" --tflite="$E/model_dynamic_range.tflite" $TEST \
  --output_dir="$M/eval_test_tflite_dr"
# The README's predict.py picture: the second test image, enlarged to 250x250 and tinted to RGB.
python - "$M/test1_250_rgb.png" <<'PY'
import sys
import cv2
import numpy as np
import tensorflow_datasets as tfds
import tfds_builders  # noqa: F401  (registers decomp_mnist)
ex = next(iter(tfds.load("decomp_mnist/bundled", split="test").skip(1).take(1)))
gray = cv2.resize(ex["image"].numpy()[..., 0], (250, 250), interpolation=cv2.INTER_LINEAR)
rgb = (gray[..., None].astype(np.float32) * np.array([0.8, 0.9, 1.0])).astype(np.uint8)
cv2.imwrite(sys.argv[1], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
PY
python predict.py --model_dir="$M" --images="$M/test1_250_rgb.png"
