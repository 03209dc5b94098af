"""The paper's CNN baseline (section 3.1): a patch classifier on CategoryNet's trunk, applied to
square sliding windows, followed by non-maximum suppression.

"We trained a deep CNN for classification with 4 categories, 3, 6, 9, and background. The
structure of this CNN is the same as the one we used for category decomposition": here the six
encoder convolutions of CategoryNet (Appendix B), then global average pooling and a softmax over
C + 1 classes (background last). Windows are "square boxes of 5 different sizes" between the
known minimum and maximum object size, "at step size 3 or 5 pixels", scored by the classifier,
then "non-maximal suppression ... with threshold 0.3".
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from decompnet_tf.models.category_net import ENCODER
from decompnet_tf.models.layers import ConvBlock
from decompnet_tf.ops.np_boxes import box_iou_np


@keras.saving.register_keras_serializable(package="decompnet_tf")
class PatchClassifier(keras.Model):
    """patches float32 [batch, P, P, 1] in [0, 1] -> {"logits": [batch, C + 1]} (background
    is the last class)."""

    def __init__(self, num_classes: int = 3, patch_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.patch_size = patch_size

    def build(self, input_shape=None):
        self.trunk = [ConvBlock(f, k, s, name=f"conv{i + 1}") for i, (f, k, s) in
                      enumerate(ENCODER)]
        self.pool = layers.GlobalAveragePooling2D(name="pool")
        self.classify = layers.Dense(self.num_classes + 1, name="classify")
        shape = (None, self.patch_size, self.patch_size, 1)
        for block in self.trunk:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.classify.build((None, shape[-1]))
        super().build((None, self.patch_size, self.patch_size, 1))

    def call(self, patches, training=None):
        x = patches
        for block in self.trunk:
            x = block(x, training=training)
        return {"logits": self.classify(self.pool(x))}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "patch_size": self.patch_size}


def window_boxes(image_size: tuple[int, int], min_size: float, max_size: float, step: int,
                 num_sizes: int = 5) -> np.ndarray:
    """All square windows of `num_sizes` sizes in [min_size, max_size] px at stride `step`.

    Returns float32 [K, 4] (ymin, xmin, ymax, xmax) normalised. For 100x100 images, sizes
    10..56 px: 2,805 windows at step 3 and 1,038 at step 5 (the paper: "about 3000 and 1000").
    """
    h, w = image_size
    boxes = []
    for size in np.linspace(min_size, max_size, num_sizes):
        ys = np.arange(0, h - size + 1e-6, step)
        xs = np.arange(0, w - size + 1e-6, step)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        yy, xx = yy.ravel(), xx.ravel()
        boxes.append(np.stack([yy / h, xx / w, (yy + size) / h, (xx + size) / w], axis=1))
    return np.concatenate(boxes).astype(np.float32)


def window_recall(windows: np.ndarray, gt_boxes: list[np.ndarray],
                  iou_threshold: float = 0.5) -> dict:
    """How well a window set can cover the objects, whatever the classifier: the share of
    ground-truth boxes that some window overlaps with IoU >= `iou_threshold` (the paper's "99%
    recall" of its windows at step 5), an upper bound on the baseline's detection recall.

    Args:
      windows: [K, 4] (ymin, xmin, ymax, xmax) normalised, as `window_boxes` gives.
      gt_boxes: one [n_i, 4] array per image, same format (n_i may be 0).
    Returns:
      {"recall", "covered", "objects", "images", "windows_per_image"}; recall is NaN when
      there are no objects.
    """
    # float32 normalised corners put an IoU of exactly the threshold in pixels (a digit on
    # the window grid) a few ulps either side of it: count those as covered.
    threshold = iou_threshold - 1e-6
    covered = objects = 0
    for boxes in gt_boxes:
        boxes = np.asarray(boxes).reshape(-1, 4)
        if len(boxes):
            covered += int((box_iou_np(boxes, windows).max(axis=1) >= threshold).sum())
            objects += len(boxes)
    return {"recall": covered / objects if objects else float("nan"), "covered": covered,
            "objects": objects, "images": len(gt_boxes), "windows_per_image": len(windows)}


def nms(boxes: tf.Tensor, scores: tf.Tensor, iou_threshold: float, max_out: int) -> tf.Tensor:
    """Greedy NMS (Girshick et al. 2014): indices of kept boxes, by descending score."""
    return tf.image.non_max_suppression(boxes, scores, max_out, iou_threshold=iou_threshold)


class SlidingWindowDetector:
    """The baseline as a detector (an `eval.detectors.Detector`; it outputs no masks)."""

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

    def _scores(self, image):
        """Class probabilities [K, C] of every window of one image [H, W, 1]."""
        p = self.classifier.patch_size
        k = tf.shape(self.windows)[0]
        crops = tf.image.crop_and_resize(image[None], self.windows, tf.zeros([k], tf.int32),
                                         (p, p))
        logits = self.classifier(crops, training=False)["logits"]
        return tf.nn.softmax(logits)[:, : self.classifier.num_classes]

    def _detect(self, image):
        probs = self._scores(image)
        boxes, scores, classes = [], [], []
        for c in range(self.classifier.num_classes):
            keep = nms(self.windows, probs[:, c], self.nms_iou, self.max_detections)
            s = tf.gather(probs[:, c], keep)
            ok = s >= self.score_threshold
            boxes.append(tf.boolean_mask(tf.gather(self.windows, keep), ok))
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
