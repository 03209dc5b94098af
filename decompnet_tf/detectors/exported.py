"""decompNet as export.py wrote it (TFLite file, SavedModel), as detectors for evaluate.py."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from decompnet_tf.postprocess import OUTPUT_KEYS


def load_tflite(path: str) -> tf.lite.Interpreter:
    """The allocated interpreter of the TFLite file at `path` (any tf.io.gfile path)."""
    with tf.io.gfile.GFile(path, "rb") as f:  # The interpreter reads local files only.
        interpreter = tf.lite.Interpreter(model_content=f.read())
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter: tf.lite.Interpreter | str, image: np.ndarray) -> dict:
    """The outputs, by OUTPUT_KEYS, of an interpreter (or TFLite file path) on one image
    float32 [1, h, w, ch] in [0, 1]."""
    if isinstance(interpreter, str):
        interpreter = load_tflite(interpreter)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           np.asarray(image, np.float32))
    interpreter.invoke()
    return {k: interpreter.get_tensor(d["index"])
            for k, d in zip(OUTPUT_KEYS, interpreter.get_output_details())}


class TFLiteDetector:
    """An exported TFLite model as a detector, one image per invoke."""

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
    """A SavedModel version folder's serving_default signature (what TF Serving runs).

    Its input is uint8: images that are not exactly uint8 pixels / 255 (e.g. resized) are
    refused rather than scored on altered pixels.
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
