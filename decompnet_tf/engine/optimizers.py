"""The optimizer of both training loops (decompNet's stages and the baseline's classifier)."""

from __future__ import annotations

import keras

from decompnet_tf.config import TrainConfig


def make_optimizer(train: TrainConfig, lr: float) -> keras.optimizers.Optimizer:
    """SGD with momentum or Adam at learning rate `lr`, with the run's gradient-norm clipping."""
    clipnorm = train.clipnorm or None
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, clipnorm=clipnorm)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(lr, clipnorm=clipnorm)
    raise ValueError(f"unknown optimizer {train.optimizer!r}; choose sgd or adam")
