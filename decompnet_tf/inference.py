"""DecompNet as a detector: one network evaluation, the stop rule, and the OD API outputs.

Every detector here satisfies `decompnet_tf.eval.detectors.Detector`, what
`decompnet_tf.eval.runner` runs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from decompnet_tf.config import CATEGORY_SOURCES, DataConfig, InferenceConfig
from decompnet_tf.data.pipeline import category_maps, category_masks
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.postprocess import (
    OUTPUT_KEYS,
    check_box_source,
    detections,
    emitted,
    with_scores,
)


def _check_category_maps(category_maps: str) -> None:
    if category_maps not in CATEGORY_SOURCES:
        raise ValueError(f"category_maps must be one of {CATEGORY_SOURCES}, got "
                         f"{category_maps!r}")


def true_category_maps(gts: list[dict], num_classes: int, map_size: tuple[int, int],
                       max_per_class: int) -> np.ndarray:
    """The category network's training target for a batch of ground truth, as training makes
    it (`data.pipeline.category_masks`, `category_maps`): per category the SUM of its first
    `max_per_class` instance masks (section 2.1), each area-resized to the maps' size.

    Args:
      gts: per image {"masks": bool [n, H, W], "classes": int [n]}.
    Returns:
      float32 [B, h, w, C].
    """
    out = []
    for gt in gts:
        masks = np.asarray(gt["masks"], np.float32)[..., None]  # [n, H, W, 1]
        masks_c, _, _ = category_masks(masks, np.asarray(gt["classes"], np.int32), num_classes,
                                       map_size, max_per_class)
        out.append(category_maps(masks_c))
    return tf.stack(out).numpy()


class DecompDetector:
    """Wraps a trained DecompNet for evaluation (an `eval.detectors.Detector`).

    Besides the detections (see `postprocess.detections`) the outputs keep "instance_maps",
    "boxes", "peaks", "segmentation_scores" and "emitted" bool [B, C, T] for the sheets.

    Args:
      net: a trained DecompNet.
      settings: the inference settings (stop threshold, box source, eq. 6's delta).
      category_maps: "network" (the detector) or "truth": the instance network decomposes
        the TRUE category maps (`true_category_maps`), a yardstick of stage 2 alone.
      max_per_class: the objects per category the true maps hold (the training data's
        `DataConfig.max_per_class`, so that they are the maps training saw).
    """

    def __init__(self, net: DecompNet, settings: InferenceConfig | None = None,
                 category_maps: str = "network",
                 max_per_class: int = DataConfig.max_per_class):
        self.settings = settings or InferenceConfig()
        check_box_source(self.settings.box_source)
        _check_category_maps(category_maps)
        self.net, self.category_maps = net, category_maps
        self.max_per_class = max_per_class
        self._fn = tf.function(self._forward, reduce_retracing=True)

    def _forward(self, images, category_maps):
        if self.category_maps == "truth":
            raw = {"category_maps": category_maps,
                   **self.net.decompose(category_maps, training=False, images=images)}
        else:
            raw = self.net(images, training=False)
        s = self.settings
        out = with_scores(raw, s.box_source, s.segmentation_delta)
        dets = detections(out, s.stop_threshold, image_size=self.net.image_size)
        return {**dets, "segmentation_scores": dets["detection_segmentation_scores"],
                "instance_maps": out["instance_maps"],
                "boxes": out["boxes"], "peaks": out["peaks"],
                "category_maps": out["category_maps"],
                "emitted": emitted(out, s.stop_threshold)}

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        images = tf.constant(images, tf.float32)
        if self.category_maps == "truth":
            if gts is None:
                raise ValueError("a detector fed the true category maps needs the ground truth")
            maps = tf.constant(true_category_maps(gts, self.net.num_classes, self.net.map_size,
                                                  self.max_per_class))
        else:  # Unused: a placeholder of the right shape keeps one traced function.
            maps = tf.zeros((images.shape[0], *self.net.map_size, self.net.num_classes))
        return {k: v.numpy() for k, v in self._fn(images, maps).items()}

    def describe(self) -> dict:
        s = self.settings
        return {"kind": "decompnet", "stop_threshold": s.stop_threshold,
                "box_source": s.box_source, "segmentation_delta": s.segmentation_delta,
                "category_maps": self.category_maps,
                "config": self.net.get_config()["config"], "windows_per_image": 0}


def load_tflite(path: str) -> tf.lite.Interpreter:
    """The allocated interpreter of the TFLite file at `path` (any tf.io.gfile path)."""
    with tf.io.gfile.GFile(path, "rb") as f:  # The interpreter reads local files only.
        interpreter = tf.lite.Interpreter(model_content=f.read())
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter: tf.lite.Interpreter | str, image: np.ndarray) -> dict:
    """One invoke of an exported TFLite detector on float32 [1, h, w, channels] in [0, 1]:
    its outputs by OUTPUT_KEYS (the order `export.saved_model.export_tflite` writes).
    `interpreter`: an allocated interpreter, or the path of the TFLite file (`load_tflite`)."""
    if isinstance(interpreter, str):
        interpreter = load_tflite(interpreter)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           np.asarray(image, np.float32))
    interpreter.invoke()
    return {k: interpreter.get_tensor(d["index"])
            for k, d in zip(OUTPUT_KEYS, interpreter.get_output_details())}


class ComponentsDetector:
    """A yardstick without an instance network: the connected components of the category maps.

    Per category, the pixels of the map above `threshold` are cut into 8-connected blobs
    (scipy.ndimage.label); each blob is one detection with its extent as the box (at the map's
    resolution, max exclusive), its pixels as the mask and the map's mean over it as the
    score. Touching or overlapping objects of one category merge into one blob, which is what
    the instance network exists to split.

    Args:
      net: a trained DecompNet (its category network gives the maps).
      category_maps: "network" or "truth" (the true category maps, as `DecompDetector`).
      threshold: the map value above which a pixel belongs to a blob.
      max_per_class: as `DecompDetector`'s.
    """

    def __init__(self, net: DecompNet, category_maps: str = "network",
                 threshold: float = 0.5, max_per_class: int = DataConfig.max_per_class):
        _check_category_maps(category_maps)
        self.net, self.category_maps, self.threshold = net, category_maps, threshold
        self.max_per_class = max_per_class
        self._maps = tf.function(lambda x: self.net.category_net(x, training=False)[
            "category_maps"], reduce_retracing=True)

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        if self.category_maps == "truth":
            maps = true_category_maps(gts, self.net.num_classes, self.net.map_size,
                                      self.max_per_class)
        else:
            maps = self._maps(tf.constant(images, tf.float32)).numpy()
        per_image = [blob_detections(m, self.threshold) for m in maps]
        return pad_detections(per_image, images.shape[1:3])

    def describe(self) -> dict:
        return {"kind": "components", "category_maps": self.category_maps,
                "threshold": self.threshold, "windows_per_image": 0}


def blob_detections(category_maps: np.ndarray, threshold: float) -> dict:
    """8-connected blobs of each category map above `threshold`.

    Args:
      category_maps: float [h, w, C].
    Returns:
      {"boxes": float32 [n, 4] (ymin, xmin, ymax, xmax) normalised, "classes": int32 [n],
       "scores": float32 [n], "masks": bool [n, h, w]}.
    """
    from scipy import ndimage

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
    """Per-image detection lists (`blob_detections`) -> the padded OD API batch dict, masks
    resized (nearest) to `image_size`, detections ordered by score."""
    import cv2

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


class TFLiteDetector:
    """An exported TFLite model as a detector (one image per invoke), for evaluate.py."""

    def __init__(self, path: str):
        self.path = path
        self.interpreter = load_tflite(path)

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        results = [run_tflite(self.interpreter, image[None]) for image in images]
        out = {k: np.concatenate([r[k] for r in results]) for k in OUTPUT_KEYS}
        out["segmentation_scores"] = out["detection_segmentation_scores"]
        return out

    def describe(self) -> dict:
        return {"kind": "tflite", "path": self.path, "windows_per_image": 0}


class SavedModelDetector:
    """An exported SavedModel (export.py's <version>/ folder) as a detector, for evaluate.py:
    its serving_default signature, the graph TF Serving runs, on the batch as uint8.

    The runner's images are the dataset's uint8 pixels / 255 (the data pipeline's
    conversion), so round(x * 255) gives the served bytes back exactly; images that are not
    (e.g. resized) are refused rather than scored on altered pixels.
    """

    def __init__(self, path: str):
        self.path = path
        self.signature = tf.saved_model.load(path).signatures["serving_default"]

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        images = np.asarray(images, np.float32)
        pixels = np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)
        if np.abs(pixels / np.float32(255.0) - images).max(initial=0.0) > 1e-6:
            raise ValueError(f"--saved_model={self.path}: the images are not uint8 pixels / 255 "
                             "(resized?), so the SavedModel's uint8 input cannot reproduce them; "
                             "evaluate the Keras model instead")
        out = {k: v.numpy() for k, v in self.signature(images=tf.constant(pixels)).items()}
        out["segmentation_scores"] = out["detection_segmentation_scores"]
        return out

    def describe(self) -> dict:
        return {"kind": "saved_model", "path": self.path, "windows_per_image": 0}
