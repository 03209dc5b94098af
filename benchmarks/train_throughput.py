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
import time

from absl import app, flags
from train_bench import (  # benchmarks/: the script's folder is on sys.path
    FLAGS,
    compiled_trainer,
    pooled_targets,
    random_batch,
)

from decompnet_tf.config import LossConfig, ModelConfig
from decompnet_tf.config_flags import from_flags

flags.DEFINE_list("objects", ["5", "10", "20"], "Objects per image for the growth rows.")
flags.DEFINE_list("steps_sweep", ["4", "8", "16"], "Values of T for the growth rows.")


def step_time(model_cfg, loss_cfg, batch, stage, solver, jit_compile, objects):
    """Seconds per training step of `stage` on a random batch."""
    import tensorflow as tf

    from decompnet_tf.models.decompnet import DecompNet

    net = DecompNet(model_cfg)
    net.build()
    images, targets = random_batch(batch, net.map_size, model_cfg.num_classes,
                                   FLAGS.max_per_class, objects)
    images = tf.constant(images)
    targets = pooled_targets(net, {k: tf.constant(v) for k, v in targets.items()})
    trainer = compiled_trainer(net, stage, loss_cfg, solver, jit_compile)
    ds = tf.data.Dataset.from_tensors((images, targets)).repeat()
    it = iter(ds)
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
    from decompnet_tf.console import cpu_kind, quiet_start

    quiet_start()
    import tensorflow as tf

    model_cfg, loss_cfg = from_flags(ModelConfig), from_flags(LossConfig)
    batch = FLAGS.batch_size
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}, batch {batch}, T = "
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
