"""decompNet as a detector (`postprocess`'s stop rule and OD API outputs), or the instance
network fed the TRUE category maps, a yardstick of stage 2 alone."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from decompnet_tf.config import CATEGORY_SOURCES, DataConfig, InferenceConfig
from decompnet_tf.data.pipeline import category_maps, category_masks
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.ops.centers import center_heatmap
from decompnet_tf.postprocess import check_box_source, detections, emitted, with_scores


def check_category_source(category_source: str) -> None:
    if category_source not in CATEGORY_SOURCES:
        raise ValueError(f"category_source must be one of {CATEGORY_SOURCES}, got "
                         f"{category_source!r}")


def true_category_maps(gts: list[dict], num_classes: int, map_size: tuple[int, int],
                       max_per_class: int) -> np.ndarray:
    """The category network's target (section 2.1) float32 [B, h, w, C] of `gts` (per image
    {"masks": bool [n, H, W], "classes": int [n]}): per category the SUM of its first
    `max_per_class` masks, as `data.pipeline` makes it."""
    out = []
    for gt in gts:
        masks = np.asarray(gt["masks"], np.float32)[..., None]  # [n, H, W, 1]
        masks_c, _, _ = category_masks(masks, np.asarray(gt["classes"], np.int32), num_classes,
                                       map_size, max_per_class)
        out.append(category_maps(masks_c))
    return tf.stack(out).numpy()


def true_center_maps(gts: list[dict], num_classes: int, map_size: tuple[int, int],
                     max_per_class: int) -> np.ndarray:
    """The centre heads' target float32 [B, h, w, C] of `gts` (per image {"boxes": [n, 4]
    normalised (ymin, xmin, ymax, xmax), "classes": int [n]}), each category's first
    `max_per_class` boxes, as training draws them (`ops.centers.center_heatmap`)."""
    boxes = np.zeros((len(gts), num_classes, max_per_class, 4), np.float32)
    valid = np.zeros((len(gts), num_classes, max_per_class), np.float32)
    for b, gt in enumerate(gts):
        classes = np.asarray(gt["classes"])
        image_boxes = np.asarray(gt["boxes"], np.float32).reshape(-1, 4)
        for c in range(num_classes):
            kept = image_boxes[classes == c][:max_per_class]
            boxes[b, c, :len(kept)], valid[b, c, :len(kept)] = kept, 1.0
    return center_heatmap(tf.constant(boxes), tf.constant(valid), map_size).numpy()


class DecompDetector:
    """A trained DecompNet as a `detectors.Detector`, also giving "peaks" and "emitted" bool
    [B, C, T]. With `category_source="truth"` it decomposes `true_category_maps`; `max_per_class`
    should be the training data's, so that they are the maps training saw."""

    def __init__(self, net: DecompNet, settings: InferenceConfig | None = None,
                 category_source: str = "network",
                 max_per_class: int = DataConfig.max_per_class):
        self.settings = settings or InferenceConfig()
        check_box_source(self.settings.box_source)
        check_category_source(category_source)
        self.net, self.category_source = net, category_source
        self.max_per_class = max_per_class
        self._fn = tf.function(self._forward, reduce_retracing=True)

    def _forward(self, images, category_maps, center_maps):
        if self.category_source == "truth":
            raw = {"category_maps": category_maps,
                   **self.net.decompose(category_maps, training=False, images=images,
                                        center_maps=center_maps)}
        else:
            raw = self.net(images, training=False)
        s = self.settings
        out = with_scores(raw, s.box_source, s.segmentation_delta, images)
        dets = detections(out, s.stop_threshold, image_size=self.net.image_size)
        return {**dets, "segmentation_scores": dets["detection_segmentation_scores"],
                "instance_maps": out["instance_maps"],
                "boxes": out["boxes"], "peaks": out["peaks"],
                "category_maps": out["category_maps"],
                "emitted": emitted(out, s.stop_threshold)}

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        images = tf.constant(images, tf.float32)
        # Unused maps are placeholders of the right shape: one traced function.
        maps = centers = tf.zeros((images.shape[0], *self.net.map_size, self.net.num_classes))
        if self.category_source == "truth":
            if gts is None:
                raise ValueError("a detector fed the true category maps needs the ground truth")
            args = (gts, self.net.num_classes, self.net.map_size, self.max_per_class)
            maps = tf.constant(true_category_maps(*args))
            if self.net.config.instance_centers:
                centers = tf.constant(true_center_maps(*args))
        return {k: v.numpy() for k, v in self._fn(images, maps, centers).items()}

    def describe(self) -> dict:
        s = self.settings
        return {"kind": "decompnet", "stop_threshold": s.stop_threshold,
                "box_source": s.box_source, "segmentation_delta": s.segmentation_delta,
                "category_source": self.category_source,
                "config": self.net.get_config()["config"], "windows_per_image": 0}
