"""The optimizer both training loops build (decompNet's stages, `engine.trainer` / `engine.loop`,
and the sliding-window baseline's classifier, `engine.baseline`)."""

from __future__ import annotations

import keras

from decompnet_tf.config import TrainConfig


def make_optimizer(train: TrainConfig, lr: float) -> keras.optimizers.Optimizer:
    """The run's optimizer at learning rate `lr`: SGD with momentum or Adam, with the run's
    gradient-norm clipping (both the decompNet stages and the baseline use it)."""
    clipnorm = train.clipnorm or None
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, clipnorm=clipnorm)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(lr, clipnorm=clipnorm)
    raise ValueError(f"unknown optimizer {train.optimizer!r}; choose sgd or adam")
