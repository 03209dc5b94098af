"""Training throughput on this machine: each stage, each matching solver with and without XLA,
and how the step time grows with the objects per image and with T.

    python benchmarks/train_throughput.py --flagfile=configs/mnist_quick.flags
    python benchmarks/train_throughput.py --flagfile=configs/mnist.flags --batch_size=32

Any train.py flag file works (the benchmark defines the same flags and reads the model, loss
and batch settings from it). Batches are random decomp_mnist-shaped tensors (no dataset):
`objects` objects per image, spread over the categories. Every figure comes from one run, so
the ratios compare like with like; nothing is asserted.
"""

from __future__ import annotations

import dataclasses
import os
import time

from absl import app, flags

from decompnet_tf.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from decompnet_tf.config_flags import define_flags, from_flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("warmup", 2, "Untimed steps (tracing, XLA compilation).", lower_bound=1)
flags.DEFINE_integer("iters", 5, "Timed steps per measurement.", lower_bound=1)
flags.DEFINE_list("bench_stages", ["1", "2", "3"], "Stages to time with the run's matching solver.")
flags.DEFINE_list("objects", ["5", "10", "20"], "Objects per image for the growth rows.")
flags.DEFINE_list("steps_sweep", ["4", "8", "16"], "Values of T for the growth rows.")
define_flags(DataConfig, ModelConfig, LossConfig, TrainConfig)


def random_batch(batch, map_size, c, m, objects, seed=0):
    """Images and targets as data.pipeline gives them, `objects` objects per image (split over
    the categories at random, at most m per category), random masks and boxes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.random((batch, 100, 100, 1), dtype=np.float32)
    counts = np.stack([np.bincount(rng.integers(0, c, objects), minlength=c)
                       for _ in range(batch)]).clip(0, m)
    valid = (np.arange(m)[None, None, :] < counts[..., None]).astype(np.int32)
    masks = (rng.random((batch, c, m, *map_size)) > 0.95).astype(np.float32) * valid[
        ..., None, None]
    corner = rng.random((batch, c, m, 2)).astype(np.float32) * 0.7
    boxes = np.concatenate([corner, corner + 0.2], axis=-1)
    return images, {"masks": masks, "boxes": boxes, "valid": valid,
                    "category_target": masks.sum(2).transpose(0, 2, 3, 1),
                    "num_objects": counts.astype(np.int32)}


def step_time(model_cfg, loss_cfg, batch, stage, solver, jit_compile, objects):
    """Seconds per training step of `stage` on a random batch."""
    import keras
    import tensorflow as tf

    from decompnet_tf.engine.trainer import DecompTrainer
    from decompnet_tf.models.decompnet import DecompNet

    net = DecompNet(model_cfg)
    net.build()
    images, targets = random_batch(batch, net.map_size, model_cfg.num_classes,
                                   FLAGS.max_per_class, objects)
    images = tf.constant(images)
    targets = {k: tf.constant(v) for k, v in targets.items()}
    if model_cfg.instance_pool > 1 and not model_cfg.instance_fine:
        size = net.instance_size
        masks = tf.reshape(targets["masks"], (-1, *net.map_size, 1))
        targets["masks"] = tf.reshape(tf.image.resize(masks, size, "area"),
                                      (batch, model_cfg.num_classes, -1, *size))
    trainer = DecompTrainer(net, stage, loss_cfg, solver=solver)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit_compile)
    ds = tf.data.Dataset.from_tensors((images, targets)).repeat()
    it = iter(ds)
    trainer.make_train_function()
    for _ in range(FLAGS.warmup):
        logs = trainer.train_function(it)
    float(logs["loss"])
    start = time.perf_counter()
    for _ in range(FLAGS.iters):
        logs = trainer.train_function(it)
    float(logs["loss"])
    return (time.perf_counter() - start) / FLAGS.iters


def main(argv):
    del argv
    from decompnet_tf.console import quiet_start

    quiet_start()
    import tensorflow as tf

    model_cfg, loss_cfg = from_flags(ModelConfig), from_flags(LossConfig)
    batch = FLAGS.batch_size
    print(f"{os.cpu_count()} CPU cores, TF {tf.__version__}, batch {batch}, T = "
          f"{model_cfg.steps}, {model_cfg.instance_decoder} decoder, instance maps pooled by "
          f"{model_cfg.instance_pool}, matching {loss_cfg.matching}")
    rows = []
    objects = int(FLAGS.objects[0]) if FLAGS.objects else 7
    for stage in (int(s) for s in FLAGS.bench_stages):
        t = step_time(model_cfg, loss_cfg, batch, stage, "scipy", False, objects)
        rows.append((f"stage {stage}, scipy solver", t))
    if loss_cfg.matching != "ordered":
        for solver, xla in (("scipy", False), ("graph", False), ("graph", True)):
            t = step_time(model_cfg, loss_cfg, batch, 2, solver, xla, objects)
            rows.append((f"stage 2, {solver} solver{', XLA' if xla else ''}", t))
    for n in (int(x) for x in FLAGS.objects):
        t = step_time(model_cfg, loss_cfg, batch, 2, "scipy", False, n)
        rows.append((f"stage 2, {n} objects per image", t))
    for steps in (int(x) for x in FLAGS.steps_sweep):
        cfg = dataclasses.replace(model_cfg, steps=steps)
        t = step_time(cfg, loss_cfg, batch, 2, "scipy", False, objects)
        rows.append((f"stage 2, T = {steps}", t))
    print(f"{'measurement':<36} {'ms/step':>9} {'images/s':>9}")
    for name, t in rows:
        print(f"{name:<36} {t * 1000:9.1f} {batch / t:9.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
