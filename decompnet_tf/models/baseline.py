"""The patch classifier of the paper's CNN baseline (section 3.1), "the same [structure] as the
one we used for category decomposition": CategoryNet's encoder, average pooling, C + 1 logits."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from decompnet_tf.models.category_net import ENCODER
from decompnet_tf.models.layers import ConvBlock


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


@keras.saving.register_keras_serializable(package="decompnet_tf")
class PatchClassifier(keras.Model):
    """Patches float32 [B, P, P, 1] in [0, 1] -> {"logits": [B, C + 1]}, background last."""

    def __init__(self, num_classes: int = 3, patch_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.patch_size = patch_size

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
        super().build((None, self.patch_size, self.patch_size, 1))

    def call(self, patches, training=None):
        x = patches
        for block in self.trunk:
            x = block(x, training=training)
        return {"logits": self.classify(self.pool(x))}

    def window_probs(self, images: tf.Tensor, windows: tf.Tensor) -> tf.Tensor:
        """Probabilities float32 [b, K, C + 1] of windows [K, 4] on images [b, H, W, 1]."""
        crops = crop_windows(images, windows, self.patch_size)
        probs = tf.nn.softmax(self(crops, training=False)["logits"])
        return tf.reshape(probs, [tf.shape(images)[0], tf.shape(windows)[0], -1])

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "patch_size": self.patch_size}
