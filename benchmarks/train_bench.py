"""What the training benchmarks share (train_throughput.py, step_profile.py): train.py's flags,
the warm-up and timed-step counts, a random decomp_mnist-shaped batch and a compiled trainer.

Importing this module defines the flags, so a benchmark script imports it before its own."""

from __future__ import annotations

from absl import flags

from decompnet_tf import config
from decompnet_tf.config_flags import define_flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("warmup", 2, "Untimed steps (tracing, XLA compilation).", lower_bound=1)
flags.DEFINE_integer("iters", 5, "Timed steps per measurement.", lower_bound=1)
flags.DEFINE_list("bench_stages", ["1", "2", "3"], "Stages to time.")
flags.DEFINE_enum("dtype_policy", "float32", ["float32", "mixed_bfloat16"],
                  "Keras dtype policy of the timed networks: mixed_bfloat16 computes in bf16 "
                  "with float32 weights (a speed probe; train.py trains in float32).")
# train.py's settings, so that any of its flag files parses.
define_flags(config.DataConfig, config.ModelConfig, config.LossConfig, config.TrainConfig,
             config.BaselineConfig, config.InferenceConfig)


def random_batch(batch, map_size, c, m, objects, seed=0):
    """Images and targets as data.pipeline gives them, `objects` objects per image (split over
    the categories at random, at most m per category), random masks and boxes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.random((batch, 100, 100, 1), dtype=np.float32)
    counts = np.stack([np.bincount(rng.integers(0, c, objects), minlength=c)
                       for _ in range(batch)]).clip(0, m)
    valid = (np.arange(m)[None, None, :] < counts[..., None]).astype(np.int32)
    masks = ((rng.random((batch, c, m, *map_size)) > 0.95) * valid[..., None, None]).astype(
        np.float32)
    corner = rng.random((batch, c, m, 2)).astype(np.float32) * 0.7
    boxes = np.concatenate([corner, corner + 0.2], axis=-1)
    return images, {"masks": masks, "boxes": boxes, "valid": valid,
                    "category_target": masks.sum(2).transpose(0, 2, 3, 1),
                    "num_objects": counts.astype(np.int32)}


def pooled_targets(net, targets: dict) -> dict:
    """`targets` (tensors, masks at the category maps' size) with the masks area-pooled to the
    instance maps' size, as data.pipeline gives them when the model pools."""
    import tensorflow as tf

    cfg = net.config
    if cfg.instance_pool == 1 or cfg.instance_fine:
        return targets
    batch, size = targets["masks"].shape[0], net.instance_size
    masks = tf.reshape(targets["masks"], (-1, *net.map_size, 1))
    masks = tf.reshape(tf.image.resize(masks, size, "area"), (batch, cfg.num_classes, -1, *size))
    return {**targets, "masks": masks}


def compiled_trainer(net, stage, loss_cfg, solver, jit_compile, category_source="network",
                     optimizer=None):
    """A DecompTrainer of `stage` compiled as the training loop compiles it (Adam by default),
    with its train function made."""
    import keras

    from decompnet_tf.engine.trainer import DecompTrainer

    trainer = DecompTrainer(net, stage, loss_cfg, category_source, solver=solver)
    trainer.compile(optimizer=optimizer or keras.optimizers.Adam(1e-4), jit_compile=jit_compile)
    trainer.make_train_function()
    return trainer
