"""DecompNet: CategoryNet -> InstanceCell x T per category -> BoxRegressor (Figure 1).

The one place where the three networks are composed. Categories are folded into the batch, so
one InstanceCell (shared across categories, section 5) decomposes every category map.

`backbone` picks the category network: "mnist" (`CategoryNet`, grayscale, Appendix B) or
"vgg16" (`VGGCategoryNet`, RGB, Appendix A's KITTI network). `instance_pool` > 1 average-pools
the category maps before the decomposition: at KITTI's 384x1248 the half-resolution maps are
192x624, and the instance cell's fully connected recurrent layer on their 24x78x32 bottleneck
would hold 123M weights (and the box regressor's first layer 490M); pooling by 4 gives 48x156
maps and a 6x20x32 bottleneck. The instance maps, boxes' masks and training targets are then at
the pooled size; detections are resized to the image as before.
"""

from __future__ import annotations

import keras
from keras import ops

from decompnet_tf.losses import detection_score, segmentation_score
from decompnet_tf.models.box_regressor import BoxRegressor
from decompnet_tf.models.category_net import CategoryNet
from decompnet_tf.models.instance_cell import InstanceCell
from decompnet_tf.models.vgg_category_net import VGGCategoryNet
from decompnet_tf.ops.boxes import xywh_to_yxyx


@keras.saving.register_keras_serializable(package="decompnet_tf")
class DecompNet(keras.Model):
    """images [batch, H, W, channels] float32 in [0, 1] -> dict of named outputs:

    - "category_maps": [batch, h, w, C] response maps (h, w = H/2, W/2 or H, W);
    - "instance_maps": [batch, C, T, h', w'] the T instance maps per category, in emission
      order; (h', w') = `instance_size`, (h, w) unless `instance_pool` > 1;
    - "boxes": [batch, C, T, 4] (ymin, xmin, ymax, xmax) normalised, from the regressor's
      (x, y, w, h), which "boxes_xywh" [batch, C, T, 4] holds as regressed (section 2.3);
    - "detection_scores": [batch, C, T] eq. 5; "segmentation_scores": [batch, C, T] eq. 6;
    - "peaks": [batch, C, T] the maximum of each instance map (the default stop signal);
    - "objectness": [batch, C, T] only with `stop_head=True`: a sigmoid on each step's top
      recurrent state, trained to say "this step holds an object" (not in the paper; issue 5).
      It replaces the peaks as the stop signal and multiplies the eq. 5 and 6 scores.
    """

    def __init__(self, num_classes: int = 3, steps: int = 11, image_size=(100, 100),
                 full_resolution: bool = False, category_skips: bool = False,
                 instance_units: int = 2048, instance_filters: int = 32,
                 instance_skips: bool = False, instance_decoder_norm: bool = False,
                 instance_activation: str = "sigmoid", instance_recurrence: str = "rnn",
                 stop_head: bool = False, instance_gated: bool = False,
                 box_hidden: int = 4096, box_dropout: float = 0.5,
                 segmentation_delta: float = 0.1, backbone: str = "mnist",
                 backbone_weights: str = "", instance_pool: int = 1, **kwargs):
        super().__init__(**kwargs)
        if backbone not in ("mnist", "vgg16"):
            raise ValueError(f"backbone must be 'mnist' or 'vgg16', got {backbone!r}")
        if backbone == "vgg16" and full_resolution:
            raise ValueError("the vgg16 backbone gives half-resolution maps only; drop "
                             "full_resolution")
        self.num_classes = num_classes
        self.steps = steps
        self.image_size = tuple(image_size)
        self.full_resolution = full_resolution
        self.category_skips = category_skips
        self.instance_units = instance_units
        self.instance_filters = instance_filters
        self.instance_skips = instance_skips
        self.instance_decoder_norm = instance_decoder_norm
        self.instance_activation = instance_activation
        self.instance_recurrence = instance_recurrence
        self.stop_head = stop_head
        self.instance_gated = instance_gated
        self.box_hidden = box_hidden
        self.box_dropout = box_dropout
        self.segmentation_delta = segmentation_delta
        self.backbone = backbone
        self.backbone_weights = backbone_weights
        self.instance_pool = instance_pool

    @property
    def channels(self) -> int:
        """Image channels the model takes: 1 (grayscale) or 3 (RGB, the VGG16 backbone)."""
        return 3 if self.backbone == "vgg16" else 1

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) of the response and instance maps."""
        h, w = self.image_size
        return (h, w) if self.full_resolution else (-(-h // 2), -(-w // 2))

    @property
    def instance_size(self) -> tuple[int, int]:
        """(h', w') of the instance maps: the category maps pooled by `instance_pool`."""
        h, w = self.map_size
        return -(-h // self.instance_pool), -(-w // self.instance_pool)

    def build(self, input_shape=None):
        h, w = self.instance_size
        if self.backbone == "vgg16":
            self.category_net = VGGCategoryNet(self.num_classes, self.backbone_weights,
                                               self.category_skips, name="category_net")
        else:
            self.category_net = CategoryNet(self.num_classes, self.full_resolution,
                                            self.category_skips, name="category_net")
        self.cell = InstanceCell(self.instance_units, self.instance_filters,
                                 self.instance_skips, self.instance_activation,
                                 decoder_norm=self.instance_decoder_norm,
                                 recurrence=self.instance_recurrence,
                                 gated=self.instance_gated, name="instance_cell")
        self.box_regressor = BoxRegressor(self.box_hidden, self.box_dropout,
                                          name="box_regressor")
        self.category_net.build((None, *self.image_size, self.channels))
        self.cell.build((None, h, w, 1))
        self.box_regressor.build((None, h, w, 1))
        if self.stop_head:
            self.objectness = keras.layers.Dense(1, activation="sigmoid", name="stop_head")
            self.objectness.build((None, self.cell.state_size[-1]))  # h2's size
        super().build((None, *self.image_size, self.channels))

    def check_images(self, images):
        """Raises a clear ValueError for images that do not fit the model (static shapes)."""
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[-1] != self.channels or tuple(shape[1:3]) != self.image_size:
            kind = "RGB" if self.channels == 3 else "grayscale"
            raise ValueError(
                f"DecompNet expects images of shape [batch, {self.image_size[0]}, "
                f"{self.image_size[1]}, {self.channels}] ({kind}, float in [0, 1]); got "
                f"{list(shape)}. Resize or convert the images (decompnet_tf.data prepares "
                "decomp_mnist and decomp_kitti)."
            )
        if shape[0] == 0:
            raise ValueError("DecompNet got an empty batch (batch size 0)")

    def call(self, images, training=None):
        self.check_images(images)
        category_maps = self.category_net(images, training=training)["category_maps"]
        return {"category_maps": category_maps, **self.decompose(category_maps, training)}

    def decompose(self, category_maps, training=None):
        """Category maps [batch, h, w, C] -> the instance outputs of `call` (all but
        "category_maps"). Unrolls the T recurrent steps explicitly."""
        h, w = self.instance_size
        c, t = self.num_classes, self.steps
        if self.instance_pool > 1:
            k = self.instance_pool
            category_maps = ops.average_pool(category_maps, k, k, padding="same")
        # [B, h, w, C] -> [B*C, h, w, 1]: categories folded into the batch.
        x = ops.reshape(ops.transpose(category_maps, (0, 3, 1, 2)), (-1, h, w, 1))
        states = self.cell.get_initial_state(ops.shape(x)[0])
        maps, objectness = [], []
        for _ in range(t):
            out, states = self.cell(x, states, training=training)
            maps.append(out)
            if self.stop_head:
                objectness.append(self.objectness(self.cell.top_state(states)))
        maps = ops.stack(maps, axis=1)  # [B*C, T, h, w, 1]
        xywh = self.box_regressor(ops.reshape(maps, (-1, h, w, 1)), training=training)
        xywh = ops.reshape(xywh, (-1, c, t, 4))
        boxes = xywh_to_yxyx(xywh)
        maps = ops.reshape(maps, (-1, c, t, h, w))
        out = {
            "instance_maps": maps,
            "boxes": boxes,
            "boxes_xywh": xywh,
            "detection_scores": detection_score(maps, boxes),
            "segmentation_scores": segmentation_score(maps, self.segmentation_delta),
            "peaks": ops.max(maps, axis=(-2, -1)),
        }
        if self.stop_head:
            out["objectness"] = ops.reshape(ops.concatenate(objectness, axis=-1), (-1, c, t))
            for key in ("detection_scores", "segmentation_scores"):
                out[key] = out[key] * out["objectness"]
        return out

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "steps": self.steps,
                "image_size": list(self.image_size), "full_resolution": self.full_resolution,
                "category_skips": self.category_skips, "instance_units": self.instance_units,
                "instance_filters": self.instance_filters,
                "instance_skips": self.instance_skips,
                "instance_decoder_norm": self.instance_decoder_norm,
                "instance_activation": self.instance_activation,
                "instance_recurrence": self.instance_recurrence, "stop_head": self.stop_head,
                "instance_gated": self.instance_gated,
                "box_hidden": self.box_hidden,
                "box_dropout": self.box_dropout, "segmentation_delta": self.segmentation_delta,
                "backbone": self.backbone, "backbone_weights": self.backbone_weights,
                "instance_pool": self.instance_pool}
