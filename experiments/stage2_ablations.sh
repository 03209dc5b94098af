#!/usr/bin/env bash
# The ablations of RESULTS.md's "Ablations (validation split, 1.0.0)": each lever measured on
# the yardsticks on the validation split (decomp_mnist 1.0.0's rows: its last 500 training
# images, never trained on), every row scored alike by
# experiments/yardsticks.py (boxes from the maps' main blob, masks at 0.3).
#
#   bash experiments/stage2_ablations.sh NAME [NAME ...]     (default: every variant below)
#
# s2_*: stage 2 ALONE, trained and evaluated on the TRUE category maps (--category_source=truth:
#   no stage 1), 3 epochs of the quick config's 5,000 images unless the name says otherwise.
# e2e_*: end to end, from one shared stage 1 (runs/stage1_quick: the quick config's category
#   network after 3 epochs), the instance network trained 3 epochs on its maps.
# Results: runs/<name>/yardsticks_validation/*/metrics.json; logs with training times:
# runs/<name>.log. Tables: python experiments/results_table.py NAME=DIR ...
set -euo pipefail
cd "$(dirname "$0")/.."
# The quick config as these rows measured it: before its size-weighted category loss and the
# stop head's residual input (RESULTS.md, "Small digits and crowded categories"), stop at 0.5.
Q="--flagfile=configs/mnist_quick.flags --verbose=2 --learning_rates=0.001
   --train_examples=5000 --steps_per_epoch=0
   --category_size_weighting=false --stop_input=state --stop_threshold=0.5"
# The paper's stage 2 (its deconvolution decoder at 25x25, no image, regressor from the
# maps), on the true maps; each s2 row changes it as named.
S2="$Q --stages=2 --epochs=3 --category_source=truth --instance_pool=2 --instance_decoder=deconv
    --noinstance_image --box_input=map --box_loss=smooth_l1 --eta=1 --giou_weight=0
    --box_dropout=0.5 --dice_weight=0"
DYN="--matching=first_n --dice_weight=1 --instance_decoder=dynamic"
E2E="$Q --stages=2 --epochs=3 --init_category_from=runs/stage1_quick --instance_pool=1
     --noinstance_image --box_input=map --box_loss=smooth_l1 --eta=1 --giou_weight=0
     --box_dropout=0.5 $DYN"
declare -A VARIANT=(
  [s2_hungarian]="$S2 --matching=hungarian"
  # Eq. 3's two open readings (configs/mnist.flags): lambda and gamma as the floors p of D_p
  # instead of loss weights; steps beyond the object count left out of the matched term.
  [s2_hungarian_floors]="$S2 --matching=hungarian --paper_lambda_gamma=floors"
  [s2_hungarian_free]="$S2 --matching=hungarian --unmatched_steps=free"
  [s2_first_n]="$S2 --matching=first_n"
  [s2_ordered]="$S2 --matching=ordered"
  [s2_ordered_dice]="$S2 --matching=ordered --dice_weight=1"
  [s2_ordered_dynamic]="$S2 --matching=ordered --instance_decoder=dynamic"
  [s2_fn_dice_dyn]="$S2 $DYN"
  [s2_fn_dice_dyn_fine]="$S2 $DYN --instance_fine"
  [s2_fn_dice_dyn_p1]="$S2 $DYN --instance_pool=1"
  [s2_fn_dice_dyn_p1_canvas]="$S2 $DYN --instance_pool=1 --instance_canvas"
  [s2_fn_dice_dyn_p1_e6]="$S2 $DYN --instance_pool=1 --epochs=6"
  [s2_fn_dice_dyn_p1_statebox]="$S2 $DYN --instance_pool=1 --box_input=state --box_loss=l1
                                --eta=5 --giou_weight=2 --box_dropout=0.1"
  [e2e_fn_dice_dyn_p1_network]="$E2E --category_source=network"
  [e2e_fn_dice_dyn_p1_truth]="$E2E --category_source=truth"
  [e2e_img]="$E2E --category_source=network --instance_image"
  [e2e_img_state]="$E2E --category_source=network --instance_image --box_input=state
                   --box_loss=l1 --eta=5 --giou_weight=2 --box_dropout=0.1"
  # Stage 2 on the true maps, then 2 epochs of stage 3 (end to end) on the network's maps.
  [e2e_truth_then_s3]="$E2E --category_source=truth --stages=2,3 --epochs=3,2
                       --learning_rates=0.001,0.0005"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!VARIANT[@]}")
# The quick config's own category network after 3 epochs, shared by the e2e rows (trained
# only when one of them runs).
if [[ " ${names[*]} " == *" e2e_"* ]] && [ ! -f runs/stage1_quick/stage1/final.weights.h5 ]; then
  python train.py $Q --stages=1 --epochs=3 --model_dir=runs/stage1_quick \
    > runs/stage1_quick.log 2>&1
fi
for name in "${names[@]}"; do
  dir=runs/$name
  # shellcheck disable=SC2086
  { time python train.py ${VARIANT[$name]} --model_dir="$dir"; } > "runs/$name.log" 2>&1
  rows=decompnet_truth
  [[ $name == e2e_* ]] && rows=decompnet,decompnet_truth
  python experiments/yardsticks.py --model_dir="$dir" --rows=$rows --box_source=component \
    --mask_threshold=0.3 >> "runs/$name.log" 2>&1
done
