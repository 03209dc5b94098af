"""Training the sliding-window baseline's patch classifier (section 3.1).

model_dir/ config.json, baseline/backup/ (resumable), baseline/final.weights.h5, logs/baseline.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from decompnet_tf.config import Config
from decompnet_tf.console import device_report
from decompnet_tf.data.builders import open_builder
from decompnet_tf.data.patches import sample_patches
from decompnet_tf.engine.callbacks import Backup
from decompnet_tf.engine.optimizers import make_optimizer
from decompnet_tf.model_io import (
    build_classifier,
    classifier_weights,
    load_weights,
    write_config,
)
from decompnet_tf.models.baseline import PatchClassifier


def patch_set(config: Config, split: str, limit: int, seed: int):
    """(patches float32 [k, P, P, 1], labels [k]) sampled from the first `limit` images of the
    logical `split` ("train" or "validation", `decompnet_tf.data.builders`)."""
    import tensorflow_datasets as tfds
    from tqdm import tqdm

    from decompnet_tf.data.pipeline import data_split

    b = config.baseline
    builder = open_builder(config.data.dataset, config.data.data_dir)
    ds = builder.as_dataset(split=data_split(config.data, split, builder))
    if limit:
        ds = ds.take(limit)
    rng = np.random.default_rng(seed)
    patches, labels = [], []
    for ex in tqdm(tfds.as_numpy(ds), desc=f"sampling {split} patches", unit="img"):
        p, lab = sample_patches(ex["image"][..., 0], ex["objects"]["bbox"],
                                ex["objects"]["label"], rng, config.model.num_classes,
                                b.patch_size, b.positives_per_object, b.negatives_per_image,
                                b.min_size, b.max_size)
        patches.append(p)
        labels.append(lab)
    return (np.concatenate(patches)[..., None].astype(np.float32) / 255.0,
            np.concatenate(labels))


def run_baseline_training(config: Config, log: Callable[[str], None] = print) -> PatchClassifier:
    """Trains the patch classifier; a rerun resumes from its checkpoint or skips if done."""
    t = config.train
    write_config(config)
    for line in device_report():
        log(line)
    keras.utils.set_random_seed(t.seed)
    net = build_classifier(config)
    if tf.io.gfile.exists(classifier_weights(t.model_dir)):
        load_weights(net, classifier_weights(t.model_dir), t.model_dir)
        log(f"baseline: finished earlier, weights in {classifier_weights(t.model_dir)}")
        return net
    x, y = patch_set(config, "train", config.data.train_examples, t.seed)
    vx, vy = patch_set(config, "validation", 200, t.seed + 1)
    log(f"baseline: {len(x)} training patches ({(y == config.model.num_classes).mean():.0%} "
        "background)")
    net_out = LogitsModel(net, name="patch_classifier_logits")
    net_out.compile(optimizer=make_optimizer(t, t.learning_rates[0]),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    stage_dir = os.path.join(t.model_dir, "baseline")
    net_out.fit(x, y, batch_size=config.data.batch_size * 4, epochs=t.epochs[0],
                validation_data=(vx, vy), verbose=t.verbose, shuffle=True,
                callbacks=[Backup(os.path.join(stage_dir, "backup"),
                                  save_freq=t.checkpoint_steps or "epoch",
                                  delete_checkpoint=False),
                           keras.callbacks.TensorBoard(
                               os.path.join(t.model_dir, "logs", "baseline"))])
    net.save_weights(classifier_weights(t.model_dir))
    log(f"baseline classifier: {classifier_weights(t.model_dir)}")
    return net


class LogitsModel(keras.Model):
    """Exposes the classifier's "logits" output as a plain tensor for compile()/fit()."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.built = True  # The classifier inside is built.

    def call(self, x, training=None):
        return self.net(x, training=training)["logits"]
