"""Building blocks shared by the networks: Appendix B's conv/deconv + batch norm + ReLU, and
resizing helpers."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="decompnet_tf")
class ConvBlock(layers.Layer):
    """conv or deconv -> batch norm -> ReLU, 'same' padding (norm=False: conv + bias -> ReLU):
    [B, H, W, C] -> [B, ceil(H / s), ceil(W / s), filters], or [B, H * s, W * s, filters]."""

    def __init__(self, filters: int, kernel_size: int, strides: int = 1,
                 transpose: bool = False, norm: bool = True, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.transpose = transpose
        self.norm = norm
        self.momentum = momentum

    def build(self, input_shape):
        conv_cls = layers.Conv2DTranspose if self.transpose else layers.Conv2D
        # No bias under batch norm: its beta plays that role.
        self.conv = conv_cls(self.filters, self.kernel_size, strides=self.strides,
                             padding="same", use_bias=not self.norm, name="conv")
        self.conv.build(input_shape)
        self.bn = (layers.BatchNormalization(momentum=self.momentum, name="bn") if self.norm
                   else None)
        if self.bn is not None:
            self.bn.build(self.conv.compute_output_shape(input_shape))
        super().build(input_shape)

    def call(self, x, training=None):
        x = self.conv(x)
        return ops.relu(self.bn(x, training=training) if self.bn is not None else x)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "transpose": self.transpose, "norm": self.norm, "momentum": self.momentum}


def crop_like(x, reference):
    """Crops x [B, H', W', C] to reference [B, H, W, *]'s size, dropping bottom rows and right
    columns: 'same'-padded stride-2 convs round up (13 -> 7), so a deconv overshoots (7 -> 14)."""
    shape = ops.shape(reference)
    return x[:, : shape[1], : shape[2], :]


def area_resize(x, size):
    """Area resize of [B, H, W, C] to `size` = (h, w); an average pool for integer ratios (the
    same result, and a TFLite builtin, unlike TensorFlow's ResizeArea)."""
    height, width = x.shape[1], x.shape[2]
    if (height, width) == tuple(size):
        return x
    if height and width and height % size[0] == 0 and width % size[1] == 0:
        pool = (height // size[0], width // size[1])
        return ops.average_pool(x, pool, pool, padding="valid")
    return ops.image.resize(x, size, interpolation="area")
