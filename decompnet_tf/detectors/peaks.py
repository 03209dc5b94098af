"""The centre-peak yardstick: the category maps' blobs, split at the centre heatmap's peaks."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import ndimage

from decompnet_tf.detectors.components import pad_detections
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.ops.centers import heatmap_peaks

PEAK_THRESHOLD = 0.3  # CenterNet's usual cut on its heatmap's peaks.


class PeaksDetector:
    """Each 8-connected blob of a category map above `threshold` is cut among the centre peaks
    inside it (`peak_threshold`), each pixel to its nearest peak: one detection per peak,
    scored by the peak; a blob holding no peak stays one detection, scored by the centre map's
    maximum over it. Needs a category network trained with a centre head (`--center_head`)."""

    def __init__(self, net: DecompNet, threshold: float = 0.5,
                 peak_threshold: float = PEAK_THRESHOLD):
        if not getattr(net.category_net, "center_head", False):
            raise ValueError("--detector=peaks needs a model trained with --center_head (its "
                             "category network has no centre maps); use --detector=components")
        self.net, self.threshold, self.peak_threshold = net, threshold, peak_threshold
        self._maps = tf.function(lambda x: self.net.category_net(x, training=False),
                                 reduce_retracing=True)

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        out = self._maps(tf.constant(images, tf.float32))
        cats, centres = out["category_maps"].numpy(), out["center_maps"].numpy()
        per_image = [peak_detections(c, z, self.threshold, self.peak_threshold)
                     for c, z in zip(cats, centres)]
        return pad_detections(per_image, images.shape[1:3])

    def describe(self) -> dict:
        return {"kind": "peaks", "threshold": self.threshold,
                "peak_threshold": self.peak_threshold, "windows_per_image": 0}


def peak_detections(category_maps: np.ndarray, center_maps: np.ndarray, threshold: float,
                    peak_threshold: float) -> dict:
    """`PeaksDetector`'s detections of one image's maps (float [h, w, C] each), in
    `components.blob_detections`' format."""
    h, w, c = category_maps.shape
    boxes, classes, scores, masks = [], [], [], []
    yy, xx = np.mgrid[:h, :w]
    for k, peaks in enumerate(heatmap_peaks(center_maps, peak_threshold)):
        labels, _ = ndimage.label(category_maps[..., k] > threshold, structure=np.ones((3, 3)))
        for i in range(1, labels.max() + 1):
            blob = labels == i
            inside = peaks[blob[peaks[:, 0], peaks[:, 1]]] if len(peaks) else peaks
            if len(inside) < 2:  # The blob whole, scored by its peak if it has one.
                cells = [blob]
                cell_scores = [float(center_maps[..., k][blob].max() if not len(inside) else
                                     center_maps[inside[0, 0], inside[0, 1], k])]
            else:  # Each pixel of the blob to its nearest peak.
                d = ((yy[None] - inside[:, 0, None, None]) ** 2
                     + (xx[None] - inside[:, 1, None, None]) ** 2)
                nearest = np.argmin(d, axis=0)
                cells = [blob & (nearest == j) for j in range(len(inside))]
                cell_scores = [float(center_maps[y, x, k]) for y, x in inside]
            for cell, score in zip(cells, cell_scores):
                ys, xs = np.nonzero(cell)
                boxes.append([ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w])
                classes.append(k)
                scores.append(score)
                masks.append(cell)
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "classes": np.asarray(classes, np.int32), "scores": np.asarray(scores, np.float32),
            "masks": np.asarray(masks, bool).reshape(-1, h, w)}
