"""The optimizer of both training loops (decompNet's stages and the baseline's classifier)."""

from __future__ import annotations

import keras

from decompnet_tf.config import TrainConfig


def epoch_decay(train: TrainConfig, lr: float) -> keras.callbacks.LearningRateScheduler:
    """`lr` times `train.lr_decay` after every epoch ("exponential"), set by the epoch's index
    at its start, so a resumed fit gets an uninterrupted one's rates."""
    return keras.callbacks.LearningRateScheduler(lambda epoch: lr * train.lr_decay**epoch)


def learning_rate(train: TrainConfig, lr: float, steps: int):
    """A stage's rate: `lr` itself for "exponential" (a callback decays it per epoch), or for
    "cosine" a per-step schedule over the stage's `steps`: linear warm-up from 0 to `lr` over
    `train.warmup_steps`, then cosine decay to 0 (Keras' CosineDecay; it reads the optimizer's
    step count, which checkpoints keep, so a resumed stage continues the curve)."""
    if train.lr_schedule == "exponential":
        return lr
    warmup = min(train.warmup_steps, max(steps - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else lr, max(steps - warmup, 1), warmup_target=lr if warmup else None,
        warmup_steps=warmup)


def make_optimizer(train: TrainConfig, lr: float,
                   steps: int | None = None) -> keras.optimizers.Optimizer:
    """SGD with momentum or Adam at learning rate `lr` (scheduled over `steps` per
    `train.lr_schedule`), with the run's gradient-norm clipping and, given
    `train.ema_momentum`, a moving average of the weights that Keras' fit swaps in at its end."""
    if train.lr_schedule != "exponential" and steps is None:
        raise ValueError(f"--lr_schedule={train.lr_schedule} needs the stage's step count")
    rate = learning_rate(train, lr, steps) if steps is not None else lr
    extra = {"clipnorm": train.clipnorm or None}
    if train.ema_momentum:
        extra.update(use_ema=True, ema_momentum=train.ema_momentum)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=train.momentum, **extra)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(rate, **extra)
    raise ValueError(f"unknown optimizer {train.optimizer!r}; choose sgd or adam")
