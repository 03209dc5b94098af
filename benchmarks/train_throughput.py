"""Training throughput per stage on this machine, and the share of step time in the matching.

    python benchmarks/train_throughput.py                      # paper-sized networks
    python benchmarks/train_throughput.py --instance_units=512 --category_skips --instance_skips

Measures, on random decomp_mnist-shaped batches (no dataset needed): images/s of the training
step of stages 1, 2 and 3, and the time of the Hungarian matching (cost matrix + host scipy call)
as a share of the stage-2 step. Ratios come from one run, so they compare like with like.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("warmup", 2, "Untimed steps (tracing).")
flags.DEFINE_integer("iters", 5, "Timed steps per stage.")
flags.DEFINE_integer("steps", 11, "Recurrent steps T.")
flags.DEFINE_integer("instance_units", 2048, "Recurrent units.")
flags.DEFINE_integer("instance_filters", 32, "InstanceCell deconvolution filters.")
flags.DEFINE_integer("box_hidden", 4096, "Box regressor hidden units.")
flags.DEFINE_boolean("category_skips", False, "CategoryNet skips.")
flags.DEFINE_boolean("instance_skips", False, "InstanceCell skips.")
flags.DEFINE_boolean("full_resolution", False, "Full-resolution maps.")
flags.DEFINE_list("stages", ["1", "2", "3"], "Stages to time.")


def random_batch(batch, map_size, c=3, m=10, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.random((batch, 100, 100, 1), dtype=np.float32)
    counts = rng.integers(1, 5, size=(batch, c))
    valid = np.arange(m)[None, None, :] < counts[..., None]
    masks = (rng.random((batch, c, m, *map_size)) > 0.9).astype(np.float32) * valid[..., None,
                                                                                    None]
    boxes = np.tile(np.array([0.1, 0.1, 0.4, 0.4], np.float32), (batch, c, m, 1))
    return images, {"masks": masks, "boxes": boxes, "valid": valid,
                    "category_target": masks.sum(2).transpose(0, 2, 3, 1),
                    "num_objects": counts.astype(np.int32)}


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from decompnet_tf.config import LossConfig, ModelConfig
    from decompnet_tf.engine.trainer import DecompTrainer, fold
    from decompnet_tf.matching import match
    from decompnet_tf.models.decompnet import DecompNet

    cfg = ModelConfig(steps=FLAGS.steps, instance_units=FLAGS.instance_units,
                      instance_filters=FLAGS.instance_filters, box_hidden=FLAGS.box_hidden,
                      category_skips=FLAGS.category_skips, instance_skips=FLAGS.instance_skips,
                      full_resolution=FLAGS.full_resolution)
    net = DecompNet(cfg)
    net.build()
    images, targets = random_batch(FLAGS.batch_size, net.map_size)
    data = (tf.constant(images), {k: tf.constant(v) for k, v in targets.items()})
    print(f"{cfg}\nbatch {FLAGS.batch_size}, {net.count_params():,} parameters, "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}")
    step_time = {}
    for stage in (int(s) for s in FLAGS.stages):
        trainer = DecompTrainer(net, stage, LossConfig())
        trainer.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
        step = tf.function(trainer.train_step)
        for _ in range(FLAGS.warmup):
            step(data)
        start = time.perf_counter()
        for _ in range(FLAGS.iters):
            logs = step(data)
        float(logs["loss"])
        step_time[stage] = (time.perf_counter() - start) / FLAGS.iters
        print(f"stage {stage}: {FLAGS.batch_size / step_time[stage]:8.1f} images/s "
              f"({step_time[stage] * 1000:.0f} ms/step)")
    if 2 in step_time:
        out = net(data[0], training=False)
        pred = fold(out["instance_maps"])
        gt, valid = fold(data[1]["masks"]), fold(data[1]["valid"])
        matcher = tf.function(lambda: match(pred, gt, valid, 0.1))
        matcher()
        start = time.perf_counter()
        for _ in range(FLAGS.iters):
            matcher().numpy()
        t = (time.perf_counter() - start) / FLAGS.iters
        print(f"matching: {t * 1000:.1f} ms/batch = {100 * t / step_time[2]:.2f}% of the "
              "stage-2 step")


if __name__ == "__main__":
    app.run(main)
