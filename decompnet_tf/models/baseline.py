"""The patch classifier of the paper's CNN baseline (section 3.1), "the same [structure] as the
one we used for category decomposition": CategoryNet's encoder, average pooling, C + 1 logits;
optionally R-CNN's box regression (Girshick et al. 2014), 4 deltas that fit the window to the
digit's box."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from decompnet_tf.models.category_net import ENCODER
from decompnet_tf.models.layers import ConvBlock
from decompnet_tf.ops.windows import DELTA_SCALES


def crop_windows(images: tf.Tensor, windows: tf.Tensor, patch_size: int,
                 box_indices: tf.Tensor | None = None) -> tf.Tensor:
    """Bilinear crops float32 [b * K, P, P, 1], image-major, of windows [K, 4] (ymin, xmin,
    ymax, xmax normalised) on images float32 [b, H, W, 1]; with `box_indices` int32 [K],
    window k on image box_indices[k] only ([K, P, P, 1])."""
    if box_indices is None:
        b, k = tf.shape(images)[0], tf.shape(windows)[0]
        box_indices = tf.repeat(tf.range(b), k)
        windows = tf.tile(windows, [b, 1])
    return tf.image.crop_and_resize(images, windows, box_indices, (patch_size, patch_size))


def apply_deltas(windows: tf.Tensor, deltas: tf.Tensor) -> tf.Tensor:
    """Boxes float32 [..., 4] (ymin, xmin, ymax, xmax normalised, clipped to the image) that
    `ops.windows.window_deltas` [..., 4] (dy, dx, log dh, log dw, scaled) make of windows."""
    deltas = deltas / tf.constant(DELTA_SCALES, deltas.dtype)
    size = windows[..., 2:] - windows[..., :2]
    centre = windows[..., :2] + size * (0.5 + deltas[..., :2])
    half = size * tf.exp(tf.minimum(deltas[..., 2:], 4.0)) / 2  # exp capped: no inf boxes
    return tf.clip_by_value(tf.concat([centre - half, centre + half], -1), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="decompnet_tf")
class PatchClassifier(keras.Model):
    """Patches float32 [B, P, P, 1] in [0, 1] -> {"logits": [B, C + 1]}, background last, and
    with `box_regression` {"box_deltas": [B, 4]} (class-agnostic `apply_deltas` deltas)."""

    def __init__(self, num_classes: int = 3, patch_size: int = 32, box_regression: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.box_regression = box_regression

    def build(self, input_shape=None):
        self.trunk = [ConvBlock(f, k, s, name=f"conv{i + 1}") for i, (f, k, s) in
                      enumerate(ENCODER)]
        self.pool = layers.GlobalAveragePooling2D(name="pool")
        self.classify = layers.Dense(self.num_classes + 1, name="classify")
        shape = (None, self.patch_size, self.patch_size, 1)
        for block in self.trunk:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.classify.build((None, shape[-1]))
        self.box = layers.Dense(4, kernel_initializer="zeros", name="box") if (
            self.box_regression) else None
        if self.box is not None:  # Starts at the window itself.
            self.box.build((None, shape[-1]))
        super().build((None, self.patch_size, self.patch_size, 1))

    def call(self, patches, training=None):
        x = patches
        for block in self.trunk:
            x = block(x, training=training)
        x = self.pool(x)
        out = {"logits": self.classify(x)}
        if self.box is not None:
            out["box_deltas"] = self.box(x)
        return out

    def window_probs(self, images: tf.Tensor, windows: tf.Tensor) -> tf.Tensor:
        """Probabilities float32 [b, K, C + 1] of windows [K, 4] on images [b, H, W, 1]."""
        return self.window_outputs(images, windows)[0]

    def window_outputs(self, images: tf.Tensor, windows: tf.Tensor):
        """(probabilities float32 [b, K, C + 1], boxes [b, K, 4]) of windows [K, 4] on images
        [b, H, W, 1]: the windows moved by their box deltas, or the windows themselves."""
        b, k = tf.shape(images)[0], tf.shape(windows)[0]
        out = self(crop_windows(images, windows, self.patch_size), training=False)
        probs = tf.reshape(tf.nn.softmax(out["logits"]), [b, k, -1])
        boxes = tf.broadcast_to(windows[None], [b, k, 4])
        if "box_deltas" in out:
            boxes = apply_deltas(boxes, tf.reshape(out["box_deltas"], [b, k, 4]))
        return probs, boxes

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "patch_size": self.patch_size, "box_regression": self.box_regression}
