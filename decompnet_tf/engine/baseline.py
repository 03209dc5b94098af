"""Training the sliding-window baseline's patch classifier (section 3.1).

Positives and random background are sampled once (`data.patches`); with `hard_negatives`,
rounds of R-CNN's hard-negative mining (`data.hard_negatives`) add mistaken windows.

Its model dir (`model_io.Run`) holds config.json, baseline/backup/ (state.json and the last
epoch's weights with the optimizer's: a rerun resumes there), baseline/final.weights.h5 and
logs/baseline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from decompnet_tf.config import Config
from decompnet_tf.console import device_report
from decompnet_tf.data.builders import open_builder
from decompnet_tf.data.hard_negatives import balanced_order, mine_hard_negatives
from decompnet_tf.data.patches import regression_targets, sample_windows
from decompnet_tf.engine.optimizers import epoch_decay, make_optimizer
from decompnet_tf.model_io import Run, build_classifier, load_weights
from decompnet_tf.models.baseline import PatchClassifier, crop_windows
from decompnet_tf.ops.windows import window_boxes

STATE_FILE = "state.json"


def load_images(config: Config, split: str, limit: int):
    """(uint8 [N, H, W], per image [n_i, 4] boxes, per image [n_i] labels) of the first
    `limit` images (0: all) of the logical `split`, "train" or "validation"."""
    import tensorflow_datasets as tfds
    from tqdm import tqdm

    from decompnet_tf.data.pipeline import data_split

    builder = open_builder(config.data.dataset, config.data.data_dir)
    ds = builder.as_dataset(split=data_split(config.data, split, builder))
    if limit:
        ds = ds.take(limit)
    images, boxes, labels = [], [], []
    for ex in tqdm(tfds.as_numpy(ds), desc=f"reading {split} images", unit="img"):
        images.append(ex["image"][..., 0])
        boxes.append(ex["objects"]["bbox"])
        labels.append(ex["objects"]["label"])
    return np.stack(images), boxes, labels


def sample_set(config: Config, images, boxes, labels, seed: int):
    """(patches uint8 [k, P, P], labels [k], box targets float32 [k, 5]) of
    `data.patches.sample_windows` over `images` (targets: `data.patches.regression_targets`)."""
    base, num_classes = config.baseline, config.model.num_classes
    rng = np.random.default_rng(seed)
    windows, ids, out, targets = [], [], [], []
    for i, (box, label) in enumerate(zip(boxes, labels)):
        w, lab = sample_windows(images.shape[1:3], box, label, rng, num_classes,
                                base.positives_per_object, base.negatives_per_image, base.min_size,
                                base.max_size, base.background_iou)
        windows.append(w)
        ids.append(np.full(len(w), i))
        out.append(lab)
        targets.append(regression_targets(w, lab, box, label, num_classes))
    return (crop_patches(images, np.concatenate(windows), np.concatenate(ids), base.patch_size),
            np.concatenate(out), np.concatenate(targets))


def window_scorer(net: PatchClassifier, windows: np.ndarray, batch: int = 8192):
    """A function: images uint8 [b, H, W] -> float32 [b, K, C + 1] probabilities of the K
    `windows`, about `batch` crops per call."""
    w = tf.constant(windows)
    probs = tf.function(net.window_probs, reduce_retracing=True)
    per_call = max(1, batch // len(windows))

    def score(images: np.ndarray) -> np.ndarray:
        x = images[..., None].astype(np.float32) / 255.0
        return np.concatenate([probs(tf.constant(x[i:i + per_call]), w).numpy()
                               for i in range(0, len(x), per_call)])

    return score


def crop_patches(images: np.ndarray, windows: np.ndarray, image_ids: np.ndarray,
                 patch_size: int, chunk: int = 16384) -> np.ndarray:
    """uint8 [m, P, P]: window m (normalised [m, 4]) of image `image_ids[m]` (uint8 [N, H, W]).

    Cropped with `models.baseline.crop_windows`, so training patches get the same resampling
    as the detector's test windows.
    """
    out = np.zeros((len(windows), patch_size, patch_size), np.uint8)
    for s in range(0, len(windows), chunk):
        ids, inverse = np.unique(image_ids[s:s + chunk], return_inverse=True)
        x = tf.constant(images[ids][..., None].astype(np.float32) / 255.0)
        crops = crop_windows(x, tf.constant(windows[s:s + chunk], tf.float32), patch_size,
                             tf.constant(inverse.reshape(-1).astype(np.int32)))
        out[s:s + chunk] = np.round(crops.numpy()[..., 0] * 255.0)
    return out


def _to_dataset(x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                batch_size: int) -> tf.data.Dataset:
    """Batches of (patches float32 in [0, 1], labels), or with box `targets` [k, 5] (labels,
    {"logits": labels, "box_deltas": targets}) for `LogitsModel`'s dict."""
    y = y if targets is None else {"logits": y, "box_deltas": targets}
    return (tf.data.Dataset.from_tensor_slices((x[..., None], y)).batch(batch_size)
            .map(lambda p, lab: (tf.cast(p, tf.float32) / 255.0, lab)))


def window_box_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Fast R-CNN's smooth L1 float32 [B] of deltas y_pred [B, 4] against y_true [B, 5] (deltas,
    then 1 for a digit patch); background patches, with no box, add 0."""
    d = tf.abs(y_pred - y_true[:, :4])
    return tf.reduce_sum(tf.where(d < 1.0, 0.5 * d * d, d - 0.5), -1) * y_true[:, 4]


def _read_state(backup: str) -> dict | None:
    path = os.path.join(backup, STATE_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _write_state(backup: str, state: dict) -> None:
    """state.json replaced whole (a crash leaves the old one, which names its own weights)."""
    path = os.path.join(backup, STATE_FILE)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        json.dump(state, f)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def run_baseline_training(config: Config, log: Callable[[str], None] = print) -> PatchClassifier:
    """Trains the patch classifier; a rerun resumes after its last finished epoch."""
    train, base = config.train, config.baseline
    num_classes = config.model.num_classes
    if train.lr_schedule != "exponential" or train.ema_momentum:
        raise ValueError("--lr_schedule=cosine and --ema_momentum train decompNet's stages; "
                         "the baseline's rate decays per epoch (--lr_decay): drop them for "
                         "--model=baseline")
    run = Run.start(config)
    for line in device_report():
        log(line)
    keras.utils.set_random_seed(train.seed)
    net = build_classifier(config)
    if tf.io.gfile.exists(run.classifier_weights()):
        load_weights(net, run.classifier_weights(), train.model_dir)
        log(f"baseline: finished earlier, weights in {run.classifier_weights()}")
        return net
    images, boxes, labels = load_images(config, "train", config.data.train_examples)
    x, y, t = sample_set(config, images, boxes, labels, train.seed)
    vimages, vboxes, vlabels = load_images(config, "validation", 200)
    vx, vy, vt = sample_set(config, vimages, vboxes, vlabels, train.seed + 1)
    if not base.box_regression:
        t = vt = None
    log(f"baseline: {len(x)} sampled training patches ({(y == num_classes).mean():.0%} "
        "background)")
    windows = window_boxes(images.shape[1:3], base.min_size, base.max_size, base.step)
    model = LogitsModel(net, name="patch_classifier_logits")
    classify = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=make_optimizer(train, train.learning_rates[0]),
                  loss={"logits": classify, "box_deltas": window_box_loss} if (
                      base.box_regression) else classify,
                  metrics={"logits": ["accuracy"]} if base.box_regression else ["accuracy"])
    backup = run.classifier_backup()
    tf.io.gfile.makedirs(backup)
    state = _read_state(backup)
    start, pool = 0, np.zeros((0, 2), np.int64)
    if state:
        model.optimizer.build(model.trainable_variables)
        load_weights(model, os.path.join(backup, state["weights"]), train.model_dir)
        start, pool = state["epoch"], np.array(state["hard"], np.int64).reshape(-1, 2)
        log(f"baseline: resumed after epoch {start} ({len(pool)} mined negatives)")
    score = window_scorer(net, windows)
    tensorboard = keras.callbacks.TensorBoard(run.logs_dir("baseline"))
    decay = epoch_decay(train, train.learning_rates[0])  # fit's epoch index is the run's
    val = _to_dataset(vx, vy, vt, config.data.batch_size * 4)
    batch = config.data.batch_size * 4
    for epoch in range(start, train.epochs[0]):
        rng = np.random.default_rng([train.seed, epoch])
        if base.hard_negatives and epoch > 0 and epoch % base.mine_every == 0:
            ids = np.sort(rng.choice(len(images), min(base.mine_images, len(images)),
                                     replace=False))
            found = mine_hard_negatives(images, boxes, labels, ids, windows, score, num_classes,
                                        base.hard_negatives_per_image, base.hard_negative_min_score,
                                        base.hard_negative_iou, base.background_iou)
            pool = np.concatenate([pool, found])[-base.hard_negative_pool:]
            log(f"baseline: epoch {epoch + 1}: mined {len(found)} hard negatives from "
                f"{len(ids)} images ({len(pool)} kept)")
        ex = np.concatenate([x, crop_patches(images, windows[pool[:, 1]], pool[:, 0],
                                             base.patch_size)])
        ey = np.concatenate([y, np.full(len(pool), num_classes, np.int64)])
        et = None if t is None else np.concatenate([t, np.zeros((len(pool), 5), np.float32)])
        order = balanced_order(ey, batch, base.background_share, num_classes, rng)
        model.fit(_to_dataset(ex[order], ey[order], None if et is None else et[order], batch),
                  epochs=epoch + 1,
                  initial_epoch=epoch, validation_data=val, verbose=train.verbose, shuffle=False,
                  callbacks=[tensorboard, decay])
        name = f"epoch{epoch + 1}.weights.h5"
        model.save_weights(os.path.join(backup, name))
        _write_state(backup, {"epoch": epoch + 1, "weights": name, "hard": pool.tolist()})
        if state and state["weights"] != name:
            tf.io.gfile.remove(os.path.join(backup, state["weights"]))
        state = {"weights": name}
    net.save_weights(run.classifier_weights())
    log(f"baseline classifier: {run.classifier_weights()}")
    return net


class LogitsModel(keras.Model):
    """The classifier for compile()/fit(): its "logits" output as a plain tensor, or with box
    regression its dict {"logits", "box_deltas"}."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.built = True  # The classifier inside is built.

    def call(self, x, training=None):
        out = self.net(x, training=training)
        return out if self.net.box_regression else out["logits"]
