"""Callbacks of the training loops: checkpoints, the lambda/gamma warm-up, TensorBoard maps."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from decompnet_tf import viz
from decompnet_tf.keras_compat import save_backup


class Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also saves at every epoch end when saving every N steps."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            save_backup(self)


class LossWeightSchedule(keras.callbacks.Callback):
    """Appendix B: lambda = gamma = `warmup` during a stage's first epoch, then their values."""

    def __init__(self, warmup: float, lam: float, gamma: float):
        super().__init__()
        self.warmup, self.lam, self.gamma = warmup, lam, gamma

    def on_epoch_begin(self, epoch, logs=None):
        first = epoch == 0
        self.model.lam.assign(self.warmup if first else self.lam)
        self.model.gamma.assign(self.warmup if first else self.gamma)


def map_sheet(image, category_maps, instance_maps=None, boxes=None, max_steps=6):
    """A uint8 RGB sheet, one row per category: input | category map | first instance maps.

    Args:
      image: [H, W, 1] in [0, 1].
      category_maps: [h, w, C].
      instance_maps: [C, T, h, w].
      boxes: [C, T, 4] (ymin, xmin, ymax, xmax) normalised, drawn on the instance maps.
    """
    size = max(1, 100 // image.shape[0])  # Small inputs are enlarged to ~100 px tiles.
    tile_hw = (image.shape[0] * size, image.shape[1] * size)
    rows = []
    for c in range(category_maps.shape[-1]):
        tiles = [viz.to_rgb(image, size),
                 _resize(viz.to_rgb(np.clip(category_maps[..., c] / 2, 0, 1)), tile_hw)]
        if instance_maps is not None:
            for t in range(min(max_steps, instance_maps.shape[1])):
                tile = _resize(viz.to_rgb(instance_maps[c, t]), tile_hw)
                tiles.append(viz.draw_boxes(tile, boxes[c, t], color=viz.PRED_COLOR))
        rows.append(viz.grid(tiles, len(tiles), pad=1))
    return np.concatenate(rows, axis=0)


def _resize(rgb, hw):
    import cv2

    return cv2.resize(rgb, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


class MapImages(keras.callbacks.Callback):
    """Writes sheets of category and instance maps for a fixed batch to TensorBoard."""

    def __init__(self, log_dir: str, images: np.ndarray, stage: int):
        super().__init__()
        self.images, self.stage = images, stage
        self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        net = self.model.net
        if self.stage == 1:
            maps = net.category_net(self.images, training=False)["category_maps"].numpy()
            sheets = [map_sheet(im, cm) for im, cm in zip(self.images, maps)]
        else:
            out = {k: v.numpy() for k, v in net(self.images, training=False).items()}
            sheets = [map_sheet(self.images[i], out["category_maps"][i], out["instance_maps"][i],
                                out["boxes"][i]) for i in range(len(self.images))]
        with self.writer.as_default():
            tf.summary.image(f"stage{self.stage}/maps", np.stack(sheets), step=epoch,
                             max_outputs=len(sheets))
        self.writer.flush()
