"""VGGCategoryNet: the category decomposition network for KITTI (paper Appendix A).

VGG16's no-top convolutions bring the image to stride 32; four stride-2 deconvolutions bring it
back to stride 2, each concatenated FCN-style with VGG's pooling output of that stride when
`skips` is on; a 1x1 layer gives one linear response map per category.

ImageNet weights are read from the Keras cache and never downloaded: a missing file is an error
naming the command that writes it, since training from random weights by accident wastes a run.
"""

from __future__ import annotations

import os

import keras
from keras import layers, ops

from decompnet_tf.models.layers import ConvBlock

VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
SKIP_LAYERS = ("block4_pool", "block3_pool", "block2_pool", "block1_pool")  # strides 16..2
# keras.applications.vgg16.preprocess_input ("caffe" mode): BGR, minus the ImageNet means.
BGR_MEAN = (103.939, 116.779, 123.68)


# Writes VGG16_NOTOP into ~/.keras/models/ (needs internet).
FETCH_COMMAND = ('python -c "import keras; '
                 "keras.applications.VGG16(include_top=False, weights='imagenet')\"")


def keras_cache_file() -> str:
    """Where keras.applications keeps the no-top VGG16 ImageNet weights ($KERAS_HOME/models)."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
                        "models", VGG16_NOTOP)


def resolve_backbone_weights(spec: str) -> str | None:
    """"" or "none" -> None (random weights); "imagenet" -> the Keras cache's file; else a path.

    Raises FileNotFoundError, naming how to get the file, when it is missing.
    """
    if spec in ("", "none"):
        return None
    path = keras_cache_file() if spec == "imagenet" else spec
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"backbone_weights={spec!r}: {path} does not exist (nothing is downloaded at run "
            f"time). On a machine with internet run `{FETCH_COMMAND}` and copy "
            f"~/.keras/models/{VGG16_NOTOP} to {keras_cache_file()} (or pass "
            f"--backbone_weights=/path/to/{VGG16_NOTOP}); --backbone_weights=none trains VGG16 "
            "from random weights")
    return path


@keras.saving.register_keras_serializable(package="decompnet_tf")
class VGGCategoryNet(keras.Model):
    """Images float32 RGB [B, H, W, 3] in [0, 1], H and W multiples of 32 ->
    {"category_maps": [B, H/2, W/2, C]}. `pretrained=False` skips the backbone's file."""

    def __init__(self, num_classes: int = 1, backbone_weights: str = "imagenet",
                 skips: bool = True, decoder_filters: int = 64, pretrained: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.backbone_weights = backbone_weights
        # False when trained weights will be loaded over the backbone's: skip its file.
        self.pretrained = pretrained
        self.skips = skips
        self.decoder_filters = decoder_filters

    def build(self, input_shape):
        h, w, c = input_shape[1], input_shape[2], input_shape[3]
        if c != 3 or h is None or w is None or h % 32 or w % 32:
            raise ValueError(f"VGGCategoryNet needs RGB images whose height and width are "
                             f"multiples of 32 (VGG16 pools 5 times); got {list(input_shape)}. "
                             "Set --image_size to e.g. 384,1248 (KITTI's padded size).")
        vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(h, w, 3))
        path = resolve_backbone_weights(self.backbone_weights) if self.pretrained else None
        if path:
            vgg.load_weights(path)
        outputs = [vgg.output] + [vgg.get_layer(n).output for n in SKIP_LAYERS]
        self.backbone = keras.Model(vgg.input, outputs, name="vgg16")
        self.decoder = [ConvBlock(self.decoder_filters, 3, 2, transpose=True,
                                  name=f"deconv{i + 1}") for i in range(len(SKIP_LAYERS))]
        shape = (None, h // 32, w // 32, 512)
        for i, block in enumerate(self.decoder):
            block.build(shape)
            stride = 2 ** (len(SKIP_LAYERS) - i)
            extra = self.backbone.outputs[i + 1].shape[-1] if self.skips else 0
            shape = (None, h // stride, w // stride, self.decoder_filters + extra)
        self.head = layers.Conv2D(self.num_classes, 1, name="head")
        self.head.build(shape)
        super().build(input_shape)

    def call(self, images, training=None):
        bgr = ops.flip(ops.cast(images, "float32") * 255.0, axis=-1)
        features = self.backbone(bgr - ops.convert_to_tensor(BGR_MEAN), training=training)
        x = features[0]
        for block, skip in zip(self.decoder, features[1:]):
            x = block(x, training=training)
            if self.skips:
                x = ops.concatenate([x, skip], axis=-1)
        return {"category_maps": self.head(x)}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "backbone_weights": self.backbone_weights, "skips": self.skips,
                "decoder_filters": self.decoder_filters}
