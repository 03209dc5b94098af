"""The sliding-window baseline's window set measured alone, without a classifier: for each
window step, the windows per image and the share of ground-truth digits that some window
overlaps with IoU >= 0.5 (section 3.1: "about 3000 and 1000" windows at steps 3 and 5, "99%
recall" at step 5). That recall bounds the baseline's detection recall from above.

    python experiments/window_recall.py --dataset=decomp_mnist/bundled --steps=3,5 \
        --split=validation --validation_examples=1000 --max_images=1000

The windows are ops.windows.window_boxes': 5 square sizes between --window_min_size and
--window_max_size px, as SlidingWindowDetector uses them. No model dir is read: the window set
depends on the image size, the sizes and the step only.
"""

from __future__ import annotations

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import BaselineConfig, DataConfig
from decompnet_tf.config_flags import define_flags, from_flags

FLAGS = flags.FLAGS
flags.DEFINE_list("steps", ["3", "5"], "Window strides in px to measure.")
flags.DEFINE_enum("split", "validation", ["train", "validation", "test"],
                  "train, validation (training images held out) or test.")
flags.DEFINE_integer("max_images", 1000, "The first N images of the split (0: all).",
                     lower_bound=0)
flags.DEFINE_float("iou", 0.5, "IoU a window needs with a digit to cover it.", lower_bound=0.0,
                   upper_bound=1.0)
define_flags(DataConfig, exclude=("batch_size", "max_per_class", "shuffle_buffer",
                                   "train_examples", "seed"))
define_flags(BaselineConfig, exclude=("patch_size", "positives_per_object",
                                      "negatives_per_image", "step", "nms_iou"))
flags.adopt_module_key_flags(config_flags)


def parse_steps(values: list[str]) -> list[int]:
    """--steps as positive ints, or a one-line error naming the bad value."""
    steps = []
    for v in values:
        try:
            steps.append(int(v))
        except ValueError:
            raise SystemExit(f"error: --steps={','.join(values)}: {v!r} is not an integer; "
                             "pass strides in px, e.g. --steps=3,5") from None
        if steps[-1] < 1:
            raise SystemExit(f"error: --steps: {v} must be >= 1")
    if not steps:
        raise SystemExit("error: --steps is empty; pass strides in px, e.g. --steps=3,5")
    return steps


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    steps = parse_steps(FLAGS.steps)
    from decompnet_tf.console import quiet_start

    quiet_start()
    import tensorflow_datasets as tfds

    from decompnet_tf.data.builders import open_builder, split_of
    from decompnet_tf.ops.windows import window_boxes, window_recall

    data, base = from_flags(DataConfig), from_flags(BaselineConfig)
    if base.min_size > base.max_size:
        raise SystemExit(f"error: --window_min_size={base.min_size} is above "
                         f"--window_max_size={base.max_size}")
    builder = open_builder(data.dataset, data.data_dir)
    image_size = tuple(builder.info.features["image"].shape[:2])
    if base.max_size > min(image_size):
        raise SystemExit(f"error: --window_max_size={base.max_size} does not fit the "
                         f"{image_size[0]}x{image_size[1]} images of {data.dataset}")
    try:
        split = split_of(builder, FLAGS.split, data.validation_examples)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    ds = builder.as_dataset(split=split)
    if FLAGS.max_images:
        ds = ds.take(FLAGS.max_images)
    boxes = [ex["objects"]["bbox"] for ex in tfds.as_numpy(ds)]
    if not boxes:
        raise SystemExit(f"error: split {FLAGS.split!r} ({split}) of {data.dataset} is empty")
    objects = sum(len(b) for b in boxes)
    print(f"{data.dataset} {FLAGS.split} ({split}): {len(boxes)} images, {objects} digits; "
          f"5 window sizes {base.min_size:g}-{base.max_size:g} px, IoU >= {FLAGS.iou:g}")
    print(f"{'step':>4}  {'windows/image':>13}  {'recall':>7}  covered")
    for step in steps:
        windows = window_boxes(image_size, base.min_size, base.max_size, step)
        r = window_recall(windows, boxes, FLAGS.iou)
        print(f"{step:>4}  {r['windows_per_image']:>13}  {r['recall']:>7.4f}  "
              f"{r['covered']}/{r['objects']}")


if __name__ == "__main__":
    app.run(main)
