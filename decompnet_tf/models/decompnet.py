"""DecompNet: CategoryNet -> InstanceCell x T per category -> BoxRegressor (Figure 1).

Categories are folded into the batch, so one InstanceCell (shared across categories, section 5)
decomposes every category map; settings are one `ModelConfig`. `instance_pool` > 1 average-pools
the category maps first: at KITTI's 384x1248, the cell's fully connected recurrent layer on the
24x78x32 bottleneck would hold 123M weights. `instance_fine` then gates the full-resolution maps
with the upsampled gates. Scores (eq. 5, 6) and the stop rule live in `postprocess`.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from decompnet_tf.config import ModelConfig
from decompnet_tf.models.box_regressor import BoxRegressor
from decompnet_tf.models.category_net import CategoryNet
from decompnet_tf.models.instance_cell import InstanceCell
from decompnet_tf.models.layers import area_resize
from decompnet_tf.models.vgg_category_net import VGGCategoryNet
from decompnet_tf.ops.boxes import xywh_to_yxyx


@keras.saving.register_keras_serializable(package="decompnet_tf")
class DecompNet(keras.Model):
    """images float32 [B, H, W, channels] in [0, 1] -> dict of named outputs.

    "category_maps" [B, h, w, C]; "instance_maps" [B, C, T, h', w'] in emission order (h', w' =
    `instance_size`); "boxes" [B, C, T, 4] (ymin, xmin, ymax, xmax) normalised, and "boxes_xywh" as
    regressed (section 2.3); "peaks" [B, C, T], each map's maximum (the paper's stop signal); with
    `stop_head` (not in the paper), "objectness" [B, C, T], a sigmoid on each step's top state;
    with `center_head`, "center_maps" [B, h, w, C].

    Args:
        config: a `ModelConfig`, or its fields as a dict (what `get_config` stores).
        pretrained_backbone: False when trained weights will be loaded over the network, so the
            VGG16 backbone's initial weights file is not needed.
    """

    def __init__(self, config: ModelConfig | dict | None = None,
                 pretrained_backbone: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.pretrained_backbone = pretrained_backbone
        if isinstance(config, dict):
            config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in config.items()})
        self.config = config or ModelConfig()
        if self.config.backbone == "vgg16" and self.config.full_resolution:
            raise ValueError("the vgg16 backbone gives half-resolution maps only; drop "
                             "full_resolution")

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config.image_size)

    @property
    def stop_head(self) -> bool:
        return self.config.stop_head

    @property
    def channels(self) -> int:
        """Image channels the model takes: 1 (grayscale) or 3 (RGB, the VGG16 backbone)."""
        return 3 if self.config.backbone == "vgg16" else 1

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) of the response maps."""
        h, w = self.image_size
        return (h, w) if self.config.full_resolution else (-(-h // 2), -(-w // 2))

    @property
    def pooled_size(self) -> tuple[int, int]:
        """(h, w) of the maps the instance cell decomposes: pooled by `instance_pool`."""
        h, w = self.map_size
        return -(-h // self.config.instance_pool), -(-w // self.config.instance_pool)

    @property
    def instance_size(self) -> tuple[int, int]:
        """(h', w') of the instance maps (and their training targets)."""
        return self.map_size if self.config.instance_fine else self.pooled_size

    def build(self, input_shape=None):
        cfg = self.config
        if cfg.backbone == "vgg16":
            self.category_net = VGGCategoryNet(cfg.num_classes, cfg.backbone_weights,
                                               cfg.category_skips, name="category_net",
                                               pretrained=self.pretrained_backbone)
        else:
            self.category_net = CategoryNet(cfg.num_classes, cfg.full_resolution,
                                            cfg.category_skips, center_head=cfg.center_head,
                                            name="category_net")
        self.cell = InstanceCell(cfg.instance_units, cfg.instance_filters, cfg.instance_skips,
                                 cfg.instance_activation, decoder_norm=cfg.instance_decoder_norm,
                                 recurrence=cfg.instance_recurrence, gated=cfg.instance_gated,
                                 decoder=cfg.instance_decoder, canvas=cfg.instance_canvas,
                                 name="instance_cell")
        self.box_regressor = BoxRegressor(cfg.box_hidden, cfg.box_dropout,
                                          name="box_regressor")
        self.category_net.build((None, *self.image_size, self.channels))
        self.cell.build((None, *self.pooled_size,
                         1 + cfg.instance_centers + self.channels * cfg.instance_image))
        self.box_regressor.build((None, self.cell.top_state_size) if cfg.box_input == "state"
                                 else (None, *self.instance_size, 1))
        if cfg.stop_head:
            self.objectness = keras.layers.Dense(1, activation="sigmoid", name="stop_head")
            residual = {"state": 0, "state_residual": 2, "state_residual_centers": 4}
            residual = residual[cfg.stop_input]
            self.objectness.build((None, self.cell.top_state_size + residual))
        super().build((None, *self.image_size, self.channels))

    def check_images(self, images):
        """Raise a clear ValueError for images that do not fit the model (static shapes)."""
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
        cat = self.category_net(images, training=training)
        return {**cat, **self.decompose(cat["category_maps"], training, images,
                                        cat.get("center_maps"))}

    def decompose(self, category_maps, training=None, images=None, center_maps=None):
        """Category maps [B, h, w, C] -> `call`'s outputs but "category_maps".

        `images` [B, H, W, channels] are needed with `instance_image`, `center_maps` [B, h, w, C]
        with `instance_centers` (the cell's context, channels after the map's).
        """
        cfg = self.config
        h, w = self.instance_size
        c, t = cfg.num_classes, cfg.steps
        def maps_to_batch(m):  # [B, h, w, C] -> [B*C, h, w, 1]: one map per row.
            return ops.reshape(ops.transpose(m, (0, 3, 1, 2)), (-1, m.shape[1], m.shape[2], 1))

        def pool(m):
            return m if cfg.instance_pool == 1 else ops.average_pool(
                m, cfg.instance_pool, cfg.instance_pool, padding="same")

        inputs = maps_to_batch(pool(category_maps))
        if cfg.instance_centers:
            if center_maps is None:
                raise ValueError("instance_centers: decompose() needs the centre maps too")
            inputs = ops.concatenate([inputs, maps_to_batch(pool(center_maps))], axis=-1)
        if cfg.instance_image:
            if images is None:
                raise ValueError("instance_image: decompose() needs the images too")
            # The image at the maps' size, once per category: [B*C, h', w', channels].
            context = pool(area_resize(images, self.map_size))
            inputs = ops.concatenate([inputs, ops.repeat(context, c, axis=0)], axis=-1)
        encoded = self.cell.encode(inputs, training=training)
        states = self.cell.get_initial_state(ops.shape(encoded["inputs"])[0])
        maps, objectness, queries = [], [], []
        full = maps_to_batch(category_maps) if cfg.instance_fine else None
        residual = cfg.stop_head and cfg.stop_input != "state"
        if residual:
            # What the earlier steps left of the category map, at the instance maps' size.
            left = ops.relu(full if cfg.instance_fine else inputs[..., :1])
            centers = None if cfg.stop_input == "state_residual" else (
                maps_to_batch(center_maps) if cfg.instance_fine else inputs[..., 1:2])
        for _ in range(t):
            # Fine maps: the cell's gate logits, upsampled, gate the full-resolution maps.
            out, states = self.cell.step(encoded, states, training=training,
                                         return_logits=cfg.instance_fine)
            if cfg.instance_fine:
                gate = ops.sigmoid(ops.image.resize(out, (h, w), interpolation="bilinear"))
                out = gate * ops.clip(full, 0.0, 1.0)
            maps.append(out)
            queries.append(self.cell.top_state(states))
            if cfg.stop_head:
                stop_in = queries[-1]
                if residual:
                    stop_in, left = self._with_residual(stop_in, left, out, centers)
                objectness.append(self.objectness(stop_in))
        maps = ops.stack(maps, axis=1)  # [B*C, T, h', w', 1]
        box_input = (ops.reshape(ops.stack(queries, axis=1), (-1, queries[0].shape[-1]))
                     if cfg.box_input == "state" else ops.reshape(maps, (-1, h, w, 1)))
        xywh = self.box_regressor(box_input, training=training)
        xywh = ops.reshape(xywh, (-1, c, t, 4))
        maps = ops.reshape(maps, (-1, c, t, h, w))
        out = {"instance_maps": maps, "boxes": xywh_to_yxyx(xywh), "boxes_xywh": xywh,
               "peaks": ops.max(maps, axis=(-2, -1))}
        if cfg.stop_head:
            out["objectness"] = ops.reshape(ops.concatenate(objectness, axis=-1), (-1, c, t))
        return out

    @staticmethod
    def _with_residual(state, left, step_map, centers=None):
        """The stop head's input [state, log1p(mass left), log1p(step map's mass)] and what is left.

        state [N, S]; left, step_map and `centers` [N, h, w, 1]. With `centers`, also the
        strongest centre under the step's map and under what was left: a fragment covers none.
        """
        step_map = ops.relu(step_map)  # Linear maps may dip below 0.
        mass = lambda m: ops.log1p(ops.sum(m, axis=(1, 2)))  # noqa: E731  [N, 1]
        features = [state, mass(left), mass(step_map)]
        if centers is not None:
            under = lambda m: ops.max(centers * ops.clip(m, 0.0, 1.0), axis=(1, 2))  # noqa: E731
            features += [under(step_map), under(left)]
        return ops.concatenate(features, axis=-1), ops.relu(left - step_map)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # keras.models.load_model loads the saved weights next: the backbone's are not needed.
        return cls(**config, pretrained_backbone=False)

    def get_config(self):
        return {**super().get_config(), "config": dataclasses.asdict(self.config)}
