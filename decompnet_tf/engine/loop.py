"""The training loop: stages in order, each resumable from its checkpoints, into a model dir
(`model_io.Run` names its files). Only the chief writes it (`distribute.write_dir`); other
workers read it to skip finished stages and resume.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from decompnet_tf.config import Config, TrainConfig
from decompnet_tf.console import device_report
from decompnet_tf.data.pipeline import make_dataset, num_examples
from decompnet_tf.engine.callbacks import Backup, LossWeightSchedule, MapImages
from decompnet_tf.engine.distribute import get_strategy, is_chief, write_dir
from decompnet_tf.engine.optimizers import epoch_decay, make_optimizer
from decompnet_tf.engine.trainer import DecompTrainer, resolve_solver
from decompnet_tf.model_io import DamagedCheckpointError, Run, build_net, load_weights
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.models.vgg_category_net import resolve_backbone_weights


def init_category(net: DecompNet, source_dir: str, log: Callable[[str], None]) -> None:
    """Copies the category network of another run (its last finished stage) into `net`."""
    source = Run.open(source_dir)
    if not source.finished_stages():
        raise FileNotFoundError(f"init_category_from={source_dir}: no finished stage there")
    try:
        net.category_net.set_weights(source.load_net(min_stage=1).category_net.get_weights())
    except ValueError as e:
        raise ValueError(f"init_category_from={source_dir}: its category network differs from "
                         f"this run's ({e}); use the same category settings") from None
    log(f"category network initialised from {source.final_weights(source.finished_stages()[-1])}")


def check_stage_settings(train: TrainConfig) -> None:
    """One epochs and one learning_rates value per stage, or a ValueError naming all three."""
    if len(train.epochs) != len(train.stages) or len(train.learning_rates) != len(train.stages):
        raise ValueError(f"need one epochs and one learning_rates value per stage: stages "
                         f"{train.stages}, epochs {train.epochs}, learning_rates "
                         f"{train.learning_rates}")


def run_training(config: Config, log: Callable[[str], None] = print,
                 validation_steps: int = 10,
                 strategy: tf.distribute.Strategy | None = None) -> DecompNet:
    """Runs the configured stages; reruns with the same config resume where they stopped.

    Args:
      strategy: one the caller already made (default: `config.train.strategy`). A process should
        make one MultiWorkerMirroredStrategy only: a second can hang its workers.
    """
    train = config.train
    check_stage_settings(train)
    solver = resolve_solver(train.matching_solver, train.jit_compile, train.strategy)
    if config.model.backbone == "vgg16":
        resolve_backbone_weights(config.model.backbone_weights)  # A missing file: stop here.
    strategy = strategy or get_strategy(train.strategy, train.tpu)
    for line in device_report(strategy):
        log(line)
    # The chief checks and writes config.json; other workers never do.
    run = Run.start(config) if is_chief(strategy) else Run(train.model_dir, config)
    keras.utils.set_random_seed(train.seed)
    with write_dir(train.model_dir, strategy) as out:
        return _train_stages(run, strategy, solver, out, log, validation_steps)


def copy_checkpoint(source: str, target: str) -> None:
    """Copies the chief's Backup folder into `target`, for this worker to resume from."""
    if source == target or not tf.io.gfile.isdir(source):
        return
    tf.io.gfile.makedirs(target)
    for name in tf.io.gfile.listdir(source):
        if not tf.io.gfile.isdir(os.path.join(source, name)):
            tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name),
                             overwrite=True)


@dataclasses.dataclass(frozen=True)
class StageData:
    """What every stage trains and validates on; `preview` is float32 [<=4, H, W, ch], the
    first validation images, whose maps TensorBoard shows; `steps` are batches per epoch."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    steps: int
    preview: np.ndarray


def make_stage_data(config: Config, net: DecompNet, validation_steps: int,
                    log: Callable[[str], None]) -> StageData:
    """The datasets of the run (the first run builds the TFDS dataset here)."""
    c, map_size = config.model.num_classes, net.map_size
    sizes = dict(image_size=net.image_size, instance_size=net.instance_size)
    start = time.perf_counter()
    train_ds = make_dataset(config.data, "train", c, map_size, training=True, repeat=True,
                            seed=config.train.seed, **sizes)
    # The validation split, never the test split (decompnet_tf.data.builders).
    val_ds = make_dataset(config.data, "validation", c, map_size, training=False,
                          **sizes).take(validation_steps)
    n_train = num_examples(config.data, "train")
    steps = config.train.steps_per_epoch or max(1, n_train // config.data.batch_size)
    preview = next(iter(val_ds))[0][:4].numpy()
    n_val = num_examples(config.data, "validation")
    log(f"data: {config.data.dataset} ready in {time.perf_counter() - start:.0f} s "
        f"({n_train} training images, {n_val} validation images)")
    return StageData(train_ds, val_ds, steps, preview)


def skip_finished_stage(net: DecompNet, run: Run, stage: int, chief: bool,
                        log: Callable[[str], None]) -> bool:
    """True when the stage's final weights loaded into `net` (skip it); False to train it.

    A damaged final weights file is removed by the chief and the stage trained again.
    """
    if not run.finished_stages([stage]):
        return False
    path = run.final_weights(stage)
    try:
        load_weights(net, path, run.model_dir)
    except DamagedCheckpointError:
        log(f"stage {stage}: {path} is damaged; training the stage again from its last "
            "checkpoint")
        if chief:
            tf.io.gfile.remove(path)
        return False
    log(f"stage {stage}: finished earlier, weights loaded from {run.stage_dir(stage)}")
    return True


def train_stage(run: Run, net: DecompNet, index: int, data: StageData,
                strategy: tf.distribute.Strategy, solver: str, out: str,
                log: Callable[[str], None]) -> None:
    """Trains stage `config.train.stages[index]`, resuming from its checkpoint; writes into
    `out`."""
    config, train = run.config, run.config.train
    stage, lr = train.stages[index], train.learning_rates[index]
    log(f"stage {stage}: {train.epochs[index]} epoch(s) of {data.steps} steps, batch "
        f"{config.data.batch_size}, {train.optimizer} lr {lr}"
        + (f" cosine ({train.warmup_steps} warm-up steps)" if train.lr_schedule == "cosine"
           else "") + (f", weights averaged at {train.ema_momentum}" if train.ema_momentum else "")
        + (f", {solver} matching solver" if stage > 1 else "")
        + (", XLA" if train.jit_compile else ""))
    with strategy.scope():
        # The true maps are stage 2's input only: stage 3 is end to end.
        source = train.category_source if stage == 2 else "network"
        trainer = DecompTrainer(net, stage, config.loss, source, solver,
                                stop_threshold=config.inference.stop_threshold)
        optimizer = make_optimizer(train, lr, train.epochs[index] * data.steps)
        trainer.compile(optimizer=optimizer, jit_compile=train.jit_compile)
    # Another worker resumes from the chief's checkpoint (the chief has not written since:
    # it cannot take a training step without this worker).
    copy_checkpoint(run.backup_dir(stage), run.backup_dir(stage, root=out))
    callbacks = [
        Backup(run.backup_dir(stage, root=out), save_freq=train.checkpoint_steps or "epoch",
               delete_checkpoint=False),
        LossWeightSchedule(config.loss.warmup_weight, config.loss.lam, config.loss.gamma),
        keras.callbacks.TensorBoard(run.logs_dir(stage, root=out), update_freq=50),
        MapImages(os.path.join(run.logs_dir(stage, root=out), "maps"), data.preview, stage),
    ]
    if train.lr_schedule == "exponential":
        callbacks.append(epoch_decay(train, lr))
    began = time.perf_counter()
    # shuffle=False: make_dataset shuffles (Keras would only warn that it cannot).
    trainer.fit(data.train, epochs=train.epochs[index], steps_per_epoch=data.steps, shuffle=False,
                validation_data=data.validation, callbacks=callbacks, verbose=train.verbose)
    # Zero epochs (an untrained reference for a later stage) never made the stage's folder.
    tf.io.gfile.makedirs(run.stage_dir(stage, root=out))
    net.save_weights(run.final_weights(stage, root=out))
    log(f"stage {stage}: done in {(time.perf_counter() - began) / 60:.1f} min")
    with tf.io.gfile.GFile(run.history_file(stage, root=out), "w") as f:
        json.dump({k: [float(v) for v in vs] for k, vs in trainer.history.history.items()},
                  f, indent=1)


def save_model(net: DecompNet, run: Run, out: str, log: Callable[[str], None]) -> None:
    """Writes model.keras, the trained DecompNet after the last stage, into `out`."""
    path = run.model_file(root=out)
    if tf.io.gfile.exists(path):
        # Replaced, not rewritten: TensorFlow's ram:// filesystem appends to a rewritten file.
        tf.io.gfile.remove(path)
    net.save(path)
    log(f"trained model: {run.model_file()}")


def _train_stages(run: Run, strategy: tf.distribute.Strategy, solver: str, out: str,
                  log: Callable[[str], None], validation_steps: int) -> DecompNet:
    """run_training's stages: reads the model dir, writes into `out` (`distribute.write_dir`)."""
    config, train = run.config, run.config.train
    with strategy.scope():
        net = build_net(config)
        if train.init_category_from:
            init_category(net, train.init_category_from, log)
    data = make_stage_data(config, net, validation_steps, log)
    chief = is_chief(strategy)
    for i, stage in enumerate(train.stages):
        if skip_finished_stage(net, run, stage, chief, log):
            continue
        train_stage(run, net, i, data, strategy, solver, out, log)
    save_model(net, run, out, log)
    return net
