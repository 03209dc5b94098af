"""CategoryNet: the category decomposition network (paper section 2.1, Appendix B).

All-convolutional, strided convolutions instead of pooling, deconvolutions back to half or full
input resolution, and a final 1x1 layer with one output channel per category:

    conv(1,32,5,2)-conv(32,32,5,2)-conv(32,64,3,2)-conv(64,64,3,1)-conv(64,64,3,2)-conv(64,64,3,1)
    -deconv(64,64,3,2) x3 [-deconv(64,64,3,2) for full resolution] -deconv(64,C,1,1)

The last layer, a 1x1 stride-1 deconvolution, is the same map as a 1x1 convolution, which is how
`layers.FCNDecoder` (the decoder shared with `VGGCategoryNet`) writes it. Batch norm and ReLU
follow every layer but the last, whose response maps are linear (they regress the sum of the
category's instance masks, which exceeds 1 where objects overlap).
After each upsampling the map is cropped to the size of the encoder map at that resolution, so
any input size works (100x100 reaches 7x7 at the bottleneck; KITTI-like 384x1248 reaches 24x78)
and the output is exactly ceil(H/2) x ceil(W/2) ("decomp") or H x W ("decomp full").

`skips=True` (not in the paper) concatenates the encoder map of the same
resolution to each upsampled map, U-Net style, which sharpens the response maps.
"""

from __future__ import annotations

import keras

from decompnet_tf.models.layers import ConvBlock, FCNDecoder

# (filters, kernel, stride) of the encoder, Appendix B.
ENCODER = ((32, 5, 2), (32, 5, 2), (64, 3, 2), (64, 3, 1), (64, 3, 2), (64, 3, 1))


@keras.saving.register_keras_serializable(package="decompnet_tf")
class CategoryNet(keras.Model):
    """Image -> one response map per category.

    Call: images float32 [batch, H, W, 1] in [0, 1] -> {"category_maps": [batch, h, w, C]} with
    (h, w) = (ceil(H/2), ceil(W/2)) when full_resolution is False, else (H, W).
    """

    def __init__(self, num_classes: int = 3, full_resolution: bool = False,
                 skips: bool = False, decoder_filters: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.full_resolution = full_resolution
        self.skips = skips
        self.decoder_filters = decoder_filters

    def build(self, input_shape):
        self.encoder = [ConvBlock(f, k, s, name=f"conv{i + 1}")
                        for i, (f, k, s) in enumerate(ENCODER)]
        self.fcn = FCNDecoder(self.num_classes, self.decoder_filters, self.skips,
                              name="decoder")
        # Build eagerly (Keras 3 subclassed models need shapes before loading weights).
        shape = tuple(input_shape)
        feature_shapes = [shape]
        for block in self.encoder:
            block.build(shape)
            shape = block.compute_output_shape(shape)
            if block.strides == 2:
                feature_shapes.append(shape)
            feature_shapes[-1] = shape
        self.fcn.build([shape, *self._references(feature_shapes)])
        super().build(input_shape)

    def _references(self, features):
        """The encoder maps the decoder upsamples to: stride 8, 4, 2 (and 1), coarsest first."""
        ups = 4 if self.full_resolution else 3
        return [features[-2 - i] for i in range(ups)]

    @property
    def decoder(self) -> list:
        """The decoder's deconvolution blocks (`FCNDecoder.blocks`)."""
        return self.fcn.blocks

    @property
    def head(self):
        """The final 1x1 layer (`FCNDecoder.head`)."""
        return self.fcn.head

    def call(self, images, training=None):
        x, features = images, [images]  # features[k]: the last map at stride 2**k.
        for block in self.encoder:
            x = block(x, training=training)
            if block.strides == 2:
                features.append(x)
            features[-1] = x
        # Upsample from stride 16 to stride 2 (or 1), cropping to the encoder map each time.
        return {"category_maps": self.fcn([x, *self._references(features)], training=training)}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "full_resolution": self.full_resolution, "skips": self.skips,
                "decoder_filters": self.decoder_filters}
