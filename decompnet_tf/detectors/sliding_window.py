"""The paper's CNN baseline as a detector (section 3.1): `PatchClassifier` scores every window
of `ops.windows.window_boxes` (and, with its box regression, fits each to its digit's box, as
Fast R-CNN does before NMS), then per class NMS ("with threshold 0.3") keeps the detections."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from decompnet_tf.models.baseline import PatchClassifier
from decompnet_tf.ops.windows import window_boxes


def nms(boxes: tf.Tensor, scores: tf.Tensor, iou_threshold: float, max_out: int) -> tf.Tensor:
    """Greedy NMS (Girshick et al. 2014): indices of kept boxes, by descending score."""
    return tf.image.non_max_suppression(boxes, scores, max_out, iou_threshold=iou_threshold)


class SlidingWindowDetector:
    """The baseline as a detector (a `detectors.Detector`; it outputs no masks)."""

    def __init__(self, classifier: PatchClassifier, image_size, min_size: float = 10.0,
                 max_size: float = 56.0, step: int = 5, nms_iou: float = 0.3,
                 score_threshold: float = 0.05, max_detections: int = 100,
                 window_batch: int = 4096):
        self.classifier = classifier
        self.windows = tf.constant(window_boxes(image_size, min_size, max_size, step))
        self.step, self.nms_iou, self.score_threshold = step, nms_iou, score_threshold
        self.max_detections, self.window_batch = max_detections, window_batch
        self.min_size, self.max_size = min_size, max_size
        self._fn = tf.function(self._forward, reduce_retracing=True)

    def _detect(self, image):
        # Class probabilities [K, C] and boxes [K, 4] of every window of the image [H, W, 1].
        probs, windows = self.classifier.window_outputs(image[None], self.windows)
        probs, windows = probs[0, :, :-1], windows[0]
        boxes, scores, classes = [], [], []
        for c in range(self.classifier.num_classes):
            keep = nms(windows, probs[:, c], self.nms_iou, self.max_detections)
            s = tf.gather(probs[:, c], keep)
            ok = s >= self.score_threshold
            boxes.append(tf.boolean_mask(tf.gather(windows, keep), ok))
            scores.append(tf.boolean_mask(s, ok))
            classes.append(tf.fill(tf.shape(scores[-1]), c))
        boxes, scores, classes = (tf.concat(x, 0) for x in (boxes, scores, classes))
        n = tf.minimum(tf.shape(scores)[0], self.max_detections)
        _, order = tf.math.top_k(scores, k=n)
        pad = self.max_detections - n
        return (tf.pad(tf.gather(boxes, order), [[0, pad], [0, 0]]),
                tf.pad(tf.gather(classes, order), [[0, pad]]),
                tf.pad(tf.gather(scores, order), [[0, pad]]), n)

    def _forward(self, images):
        boxes, classes, scores, num = tf.map_fn(
            self._detect, images, fn_output_signature=(tf.float32, tf.int32, tf.float32,
                                                       tf.int32))
        return {"detection_boxes": boxes, "detection_classes": classes,
                "detection_scores": scores, "num_detections": num}

    def predict(self, images: np.ndarray, gts: list | None = None) -> dict:
        del gts  # The Detector protocol's ground truth: unused here.
        return {k: v.numpy() for k, v in self._fn(tf.constant(images, tf.float32)).items()}

    def describe(self) -> dict:
        return {"kind": "baseline", "windows_per_image": int(self.windows.shape[0]),
                "step": self.step, "window_sizes": [self.min_size, self.max_size],
                "nms_iou": self.nms_iou, "config": self.classifier.get_config()}
