#!/usr/bin/env bash
# The quick config's settings re-decided at 3 seeds per arm on the cheapest proxy that
# exercises each (RESULTS.md, "Decisions beyond the noise"), through experiments/seeds.py.
#
#   bash experiments/spread.sh [PART ...]     (default: s1 s2; resumable: rerun to continue)
#
# s1: stage 1 alone (7 epochs), scored by the connected components of its category maps;
# s2: stage 2 alone (5 epochs) on the TRUE category maps, scored on the true maps;
# e2e: the quick config end to end with stage 1 at 0.001, as it was before e2e_s1lr (validation,
# then calibrated thresholds per seed);
# schedule: stage 1 alone with warm-up and cosine decay, or a moving average of the weights;
# s2now: stage 2 alone as the quick config is now (s2_quick2), and without the instance skips;
# fixed: the settings fixed before the validation split (the stop head, learning rates, the
# sizes, batch size, the optimizer) against s1_quick (scored as in schedule) and s2_quick2;
# more: stage 1 at twice the winning rate, stage 2 with the paper's 32 instance filters, stage 1
# on all training images at the same steps per epoch;
# e2e_s1lr: the quick config end to end as it is now, stage 1 at 0.002 (validation, then
# calibration); s3rate: stage 3 alone at half and double its rate, from e2e_s1lr's stage-1 and
# stage-2 weights of the same seed (a paired proxy: only stage 3's rate differs), against
# e2e_s1lr's models, all read at their stored thresholds (eval val53); e2e_all: the quick config
# end to end on all training images at the same steps per epoch (validation, calibration);
# era1: the stage-2 settings first chosen on one run of decomp_mnist 1.0.0 (the paper's
# decoder, 25x25 instance maps, the paper's box loss) against s2_quick2; image: without the image
# beside the maps, the same way;
# s1epochs: stage 1 alone at 0.002 for 5 and 9 epochs against s1_lr002's 7; order: stage 2 on
# the network's maps for stages 2 and 3's 10 epochs, no stage 3, from each seed's stage-1 weights
# of ORDER_BASE (default quick_all_images), against that base;
# centers: stage 1 alone with the centre head (--center_head), scored by its maps' components
# (s1pc) and cut at its peaks (eval "peaks"), its focal loss weighted 1 and 0.05, against
# s1_lr002;
# s3rate_all: stage 3 at 0.001 from each quick_all_images seed's stage-1 and stage-2 weights,
# read at stop 0.5 / masks 0.3 as that base was (eval val53);
# epochs23: stage 2 alone for 3 and 7 epochs against s2_quick2's 5; stage 3 for 3 epochs from
# each quick_all_images seed's stage-1/2 weights against that base's 5 (eval val53);
# centers_in: stage 2 alone on the true maps with the true centre maps as the instance network's
# input (--instance_centers), then also read by the stop head (state_residual_centers), against
# s2_quick2; e2e_centers: the quick config end to end with the centre head and its maps as that
# input (validation, calibration), read at stop 0.5 / masks 0.3 as quick_all_images was (val53),
# and cut at the centre peaks (peaks);
# each on the first 500 validation images. Summaries: runs/seeds/<arm>/summary_*.md.
# The stage-alone proxies (s1, s2) read 5,000 training images, as their base rows did.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=configs/mnist_quick.flags
SEEDS=${SEEDS:-0,1,2}
S1_EVAL="s1=--stage=1 --detector=components --split=validation --max_images=500 --num_sheets=0"
S2_EVAL="truth=--stage=2 --category_source=truth --split=validation --max_images=500 --num_sheets=0"
E2E_EVAL="validation=--split=validation --max_images=500 --num_sheets=0"
S1PC_EVAL="s1pc=${S1_EVAL#s1=}"  # pycocotools' matching (s1 rows predate it)
FIVE_K="--train_examples=5000 --steps_per_epoch=0"  # the quick file's data until e2e_all

s1() {  # name, extra train.py flags
  python experiments/seeds.py --name="$1" --seeds="$SEEDS" --eval="${S1E:-$S1_EVAL}" \
    ${S1X:+--eval="$S1X"} -- \
    --flagfile=$Q $FIVE_K --stages=1 --epochs=7 --learning_rates=0.001 --verbose=2 "${@:2}"
}
e2e() {  # name, extra train.py flags: the quick config end to end, then each seed's thresholds
  python experiments/seeds.py --name="$1" --seeds="$SEEDS" --eval="$E2E_EVAL" \
    ${E2EX[@]+"${E2EX[@]}"} -- --flagfile=$Q --verbose=2 "${@:2}"
  for s in ${SEEDS//,/ }; do
    d=runs/seeds/$1/seed$s
    [ -s "$d/calibration.txt" ] || python experiments/calibrate_thresholds.py \
      --model_dir="$d" > "$d/calibration.txt"
  done
}
s3_all() {  # name, extra train.py flags: stage 3 alone from each quick_all_images seed's
  # stage-1/2 weights (a paired proxy), read at stop 0.5 / masks 0.3 as that base was (val53)
  for s in ${SEEDS//,/ }; do  # Stages 1 and 2 done: train.py runs stage 3 alone.
    d=runs/seeds/$1/seed$s src=runs/seeds/quick_all_images/seed$s
    [ -d "$d" ] || { mkdir -p "$d"; cp -r "$src/stage1" "$src/stage2" "$d/"; }
  done
  python experiments/seeds.py --name="$1" --seeds="$SEEDS" \
    --eval="val53=${E2E_EVAL#validation=} --stop_threshold=0.5 --mask_threshold=0.3" -- \
    --flagfile=$Q --verbose=2 --train_examples=0 --steps_per_epoch=625 "${@:2}"
}
s2() {
  python experiments/seeds.py --name="$1" --seeds="$SEEDS" --eval="$S2_EVAL" ${S2X:+--eval="$S2X"} -- \
    --flagfile=$Q $FIVE_K --stages=2 --epochs=5 --learning_rates=0.001 --verbose=2 "${@:2}"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(s1 s2)
for part in "${parts[@]}"; do
  case $part in
    s1)
      s1 s1_quick
      s1 s1_no_size_weighting --category_size_weighting=false
      s1 s1_category_p01 --category_p=0.1
      s1 s1_no_skips --category_skips=false
      ;;
    s2)
      s2 s2_quick
      s2 s2_stop_state --stop_input=state
      s2 s2_first_n --matching=first_n
      s2 s2_box_map --box_input=map
      s2 s2_instance_p01 --instance_p=0.1
      s2 s2_no_dice --dice_weight=0
      s2 s2_ungated --instance_gated=false
      ;;
    e2e)
      e2e quick $FIVE_K --learning_rates=0.001,0.001,0.0005
      ;;
    s2now)  # s2_quick2: the flag file as it is (the s2 part's base differs in two settings)
      s2 s2_quick2
      s2 s2_no_instance_skips --instance_skips=false
      ;;
    schedule)  # against s1_quick (the rate times 0.7 each epoch, the last weights), all three
      # scored by pycocotools' matching (eval "s1pc"; the s1 part's rows predate it)
      for s in ${SEEDS//,/ }; do  # The base's models (trained by the s1 part), scored again.
        d=runs/seeds/s1_quick/seed$s
        [ -f "$d/eval_s1pc/metrics.json" ] || python evaluate.py --model_dir="$d" \
          ${S1_EVAL#s1=} --output_dir="$d/eval_s1pc" > "$d.s1pc.log" 2>&1
      done
      python experiments/seeds.py --name=s1_quick --seeds="$SEEDS" --eval="$S1PC_EVAL" --summary_only
      S1E=$S1PC_EVAL s1 s1_cosine --lr_schedule=cosine --warmup_steps=200
      S1E=$S1PC_EVAL s1 s1_ema --ema_momentum=0.999
      ;;
    fixed)
      # Without the stop head the paper's rule stops at the first map whose peak is below the
      # stop threshold: scored at the stored 0.5 and at 0.3 (eval truth03).
      S2X="truth03=${S2_EVAL#truth=} --stop_threshold=0.3" s2 s2_no_stop_head --stop_head=false
      s2 s2_lr0005 --learning_rates=0.0005
      s2 s2_lr002 --learning_rates=0.002
      S1E=$S1PC_EVAL s1 s1_lr0005 --learning_rates=0.0005
      S1E=$S1PC_EVAL s1 s1_lr002 --learning_rates=0.002
      s2 s2_box_hidden512 --box_hidden=512
      s2 s2_units256 --instance_units=256
      s2 s2_batch16 --batch_size=16
      S1E=$S1PC_EVAL s1 s1_batch16 --batch_size=16
      s2 s2_sgd --optimizer=sgd --learning_rates=0.01
      ;;
    more)
      S1E=$S1PC_EVAL s1 s1_lr004 --learning_rates=0.004
      s2 s2_filters32 --instance_filters=32
      S1E=$S1PC_EVAL s1 s1_all_images --train_examples=0 --steps_per_epoch=625
      ;;
    era1)
      s2 s2_deconv --instance_decoder=deconv
      s2 s2_pool2 --instance_pool=2
      s2 s2_smooth_l1 --box_loss=smooth_l1 --giou_weight=0
      ;;
    image)  # chosen end to end in 1.0.0; stage 2 alone is the cheaper check
      s2 s2_no_image --instance_image=false
      ;;
    s3rate)
      V53="val53=${E2E_EVAL#validation=}"
      python experiments/seeds.py --name=quick_s1lr002 --seeds="$SEEDS" --eval="$V53" -- \
        --flagfile=$Q $FIVE_K --verbose=2 --learning_rates=0.002,0.001,0.0005
      for arm in s3_lr00025:0.00025 s3_lr001:0.001; do
        name=${arm%%:*}
        for s in ${SEEDS//,/ }; do  # Stages 1 and 2 done: train.py runs stage 3 alone.
          d=runs/seeds/$name/seed$s src=runs/seeds/quick_s1lr002/seed$s
          [ -d "$d" ] || { mkdir -p "$d"; cp -r "$src/stage1" "$src/stage2" "$d/"; }
        done
        python experiments/seeds.py --name="$name" --seeds="$SEEDS" --eval="$V53" -- \
          --flagfile=$Q $FIVE_K --verbose=2 --learning_rates=0.002,0.001,"${arm#*:}"
      done
      ;;
    e2e_all)
      e2e quick_all_images --train_examples=0 --steps_per_epoch=625
      ;;
    s1epochs)  # against s1_lr002 (7 epochs, from the fixed part)
      S1E=$S1PC_EVAL s1 s1_lr002_e5 --learning_rates=0.002 --epochs=5
      S1E=$S1PC_EVAL s1 s1_lr002_e9 --learning_rates=0.002 --epochs=9
      ;;
    order)  # stage 1 as ORDER_BASE's seeds; stage 2 on the network's maps, no stage 3
      base=${ORDER_BASE:-quick_all_images}
      for s in ${SEEDS//,/ }; do
        d=runs/seeds/s2_network_maps/seed$s
        [ -d "$d" ] || { mkdir -p "$d"; cp -r "runs/seeds/$base/seed$s/stage1" "$d/"; }
      done
      python experiments/seeds.py --name=s2_network_maps --seeds="$SEEDS" --eval="$E2E_EVAL" -- \
        --flagfile=$Q --verbose=2 --train_examples=0 --steps_per_epoch=625 --stages=1,2 \
        --epochs=7,10 --learning_rates=0.002,0.001 --category_source=network
      ;;
    centers)
      S1E=$S1PC_EVAL S1X="peaks=${S1_EVAL#s1=} --detector=peaks" \
        s1 s1_center --learning_rates=0.002 --center_head
      S1E=$S1PC_EVAL S1X="peaks=${S1_EVAL#s1=} --detector=peaks" \
        s1 s1_center_w005 --learning_rates=0.002 --center_head --center_weight=0.05
      ;;
    s3rate_all)
      s3_all s3all_lr001 --learning_rates=0.002,0.001,0.001
      ;;
    epochs23)
      s2 s2_e3 --epochs=3
      s2 s2_e7 --epochs=7
      s3_all s3all_e3 --epochs=7,5,3
      ;;
    centers_in)
      s2 s2_centers_in --center_head --instance_centers
      s2 s2_centers_stop --center_head --instance_centers --stop_input=state_residual_centers
      ;;
    e2e_centers)
      V53="val53=${E2E_EVAL#validation=} --stop_threshold=0.5 --mask_threshold=0.3"
      E2EX=("--eval=$V53" "--eval=peaks=${E2E_EVAL#validation=} --detector=peaks")
      e2e quick_centers --center_head --instance_centers
      E2EX=()
      ;;
    e2e_s1lr)
      e2e quick_s1lr002 $FIVE_K --learning_rates=0.002,0.001,0.0005
      ;;
    *) echo "spread.sh: unknown part $part (s1, s2, e2e, s2now, schedule, fixed, more, era1, image, s1epochs, order, centers, s3rate_all, epochs23, centers_in, e2e_centers, e2e_s1lr, s3rate, e2e_all)" >&2; exit 2 ;;
  esac
done
