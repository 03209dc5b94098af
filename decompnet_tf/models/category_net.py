"""CategoryNet: the category decomposition network (paper section 2.1, Appendix B).

    conv(1,32,5,2)-conv(32,32,5,2)-conv(32,64,3,2)-conv(64,64,3,1)-conv(64,64,3,2)-conv(64,64,3,1)
    -deconv(64,64,3,2) x3 [-deconv(64,64,3,2) for full resolution] -deconv(64,C,1,1)

The last layer is linear: it regresses the sum of the category's masks, above 1 where objects
overlap. Each upsampled map is cropped to the encoder map's size, so any input size works.
`skips=True` (not in the paper) concatenates that encoder map, U-Net style. `center_head=True`
(not in the paper; CenterNet, Zhou et al. 2019) adds a second 1x1 head on the same features: per
class, a heatmap in (0, 1) that peaks at each object's box centre, so touching digits that merge
in the summed map stay separate peaks.
"""

from __future__ import annotations

import math

import keras
from keras import initializers, layers, ops

from decompnet_tf.models.layers import ConvBlock, crop_like

# (filters, kernel, stride) of the encoder, Appendix B.
ENCODER = ((32, 5, 2), (32, 5, 2), (64, 3, 2), (64, 3, 1), (64, 3, 2), (64, 3, 1))
CENTER_PRIOR = 0.1  # The centre head's initial output: CenterNet's bias, so background starts low.


@keras.saving.register_keras_serializable(package="decompnet_tf")
class CategoryNet(keras.Model):
    """Images float32 [B, H, W, 1] in [0, 1] -> {"category_maps": [B, h, w, C]}, (h, w) =
    (ceil(H/2), ceil(W/2)), or (H, W) with `full_resolution`; with `center_head` also
    "center_maps" [B, h, w, C] in (0, 1)."""

    def __init__(self, num_classes: int = 3, full_resolution: bool = False,
                 skips: bool = False, decoder_filters: int = 64, center_head: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.full_resolution = full_resolution
        self.skips = skips
        self.decoder_filters = decoder_filters
        self.center_head = center_head

    def build(self, input_shape):
        self.encoder = [ConvBlock(f, k, s, name=f"conv{i + 1}")
                        for i, (f, k, s) in enumerate(ENCODER)]
        ups = 4 if self.full_resolution else 3
        self.decoder = [ConvBlock(self.decoder_filters, 3, 2, transpose=True, name=f"deconv{i + 1}")
                        for i in range(ups)]
        self.head = layers.Conv2DTranspose(self.num_classes, 1, 1, name="head")
        if self.center_head:
            prior = initializers.Constant(-math.log((1 - CENTER_PRIOR) / CENTER_PRIOR))
            self.center = layers.Conv2D(self.num_classes, 1, activation="sigmoid",
                                        bias_initializer=prior, name="center")
        # Build eagerly (Keras 3 subclassed models need shapes before loading weights).
        shape = tuple(input_shape)
        feature_shapes = [shape]
        for block in self.encoder:
            block.build(shape)
            shape = block.compute_output_shape(shape)
            if block.strides == 2:
                feature_shapes.append(shape)
            feature_shapes[-1] = shape
        for i, block in enumerate(self.decoder):
            block.build(shape)
            ref = feature_shapes[-2 - i]
            extra = ref[-1] if self.skips else 0
            shape = ref[:-1] + (self.decoder_filters + extra,)
        self.head.build(shape)
        if self.center_head:
            self.center.build(shape)
        super().build(input_shape)

    def call(self, images, training=None):
        x, features = images, [images]  # features[k]: the last map at stride 2**k.
        for block in self.encoder:
            x = block(x, training=training)
            if block.strides == 2:
                features.append(x)
            features[-1] = x
        # Upsample from stride 16 to stride 2 (or 1), cropping to the encoder map each time.
        for i, block in enumerate(self.decoder):
            reference = features[-2 - i]
            x = crop_like(block(x, training=training), reference)
            if self.skips:
                x = ops.concatenate([x, reference], axis=-1)
        out = {"category_maps": self.head(x)}
        if self.center_head:
            out["center_maps"] = self.center(x)
        return out

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "full_resolution": self.full_resolution, "skips": self.skips,
                "decoder_filters": self.decoder_filters, "center_head": self.center_head}
