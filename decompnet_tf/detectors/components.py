"""The connected-components yardstick: blobs of the category maps, no instance network."""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf
from scipy import ndimage

from decompnet_tf.config import DataConfig
from decompnet_tf.detectors.decompnet import check_category_source, true_category_maps
from decompnet_tf.models.decompnet import DecompNet


class ComponentsDetector:
    """Each 8-connected blob of `net`'s category maps (or, "truth", the true ones) above
    `threshold` is a detection, scored by the map's mean over it. Touching objects merge: that is
    what the instance network exists to split."""

    def __init__(self, net: DecompNet, category_source: str = "network",
                 threshold: float = 0.5, max_per_class: int = DataConfig.max_per_class):
        check_category_source(category_source)
        self.net, self.category_source, self.threshold = net, category_source, threshold
        self.max_per_class = max_per_class
        self._maps = tf.function(lambda x: self.net.category_net(x, training=False)[
            "category_maps"], reduce_retracing=True)

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        if self.category_source == "truth":
            maps = true_category_maps(gts, self.net.num_classes, self.net.map_size,
                                      self.max_per_class)
        else:
            maps = self._maps(tf.constant(images, tf.float32)).numpy()
        per_image = [blob_detections(m, self.threshold) for m in maps]
        return pad_detections(per_image, images.shape[1:3])

    def describe(self) -> dict:
        return {"kind": "components", "category_source": self.category_source,
                "threshold": self.threshold, "windows_per_image": 0}


def blob_detections(category_maps: np.ndarray, threshold: float) -> dict:
    """8-connected blobs of each category map (float [h, w, C]) above `threshold`: {"boxes":
    float32 [n, 4] (ymin, xmin, ymax, xmax) normalised, max exclusive, "classes": int32 [n],
    "scores": float32 [n], "masks": bool [n, h, w]}."""
    h, w, c = category_maps.shape
    boxes, classes, scores, masks = [], [], [], []
    for k in range(c):
        labels, n = ndimage.label(category_maps[..., k] > threshold, structure=np.ones((3, 3)))
        for i, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
            blob = labels == i
            boxes.append([ys.start / h, xs.start / w, ys.stop / h, xs.stop / w])
            classes.append(k)
            scores.append(float(category_maps[..., k][blob].mean()))
            masks.append(blob)
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "classes": np.asarray(classes, np.int32), "scores": np.asarray(scores, np.float32),
            "masks": np.asarray(masks, bool).reshape(-1, h, w)}


def pad_detections(per_image: list[dict], image_size: tuple[int, int]) -> dict:
    """`blob_detections` per image -> the padded OD API batch, by score, masks at `image_size`."""
    n_max = max(1, max(len(d["scores"]) for d in per_image))
    b, (hh, ww) = len(per_image), image_size
    out = {"detection_boxes": np.zeros((b, n_max, 4), np.float32),
           "detection_classes": np.zeros((b, n_max), np.int32),
           "detection_scores": np.zeros((b, n_max), np.float32),
           "detection_masks": np.zeros((b, n_max, hh, ww), np.float32),
           "num_detections": np.zeros(b, np.int32)}
    for i, d in enumerate(per_image):
        order = np.argsort(-d["scores"], kind="stable")
        k = len(order)
        out["num_detections"][i] = k
        out["detection_boxes"][i, :k] = d["boxes"][order]
        out["detection_classes"][i, :k] = d["classes"][order]
        out["detection_scores"][i, :k] = d["scores"][order]
        for j, m in enumerate(d["masks"][order]):
            out["detection_masks"][i, j] = cv2.resize(m.astype(np.uint8), (ww, hh),
                                                      interpolation=cv2.INTER_NEAREST)
    out["segmentation_scores"] = out["detection_scores"]
    return out
