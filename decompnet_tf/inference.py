"""DecompNet as a detector: one network evaluation, the stop rule, and the OD API outputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.postprocess import check_box_source, detections, emitted, with_box_source


class DecompDetector:
    """Wraps a trained DecompNet for evaluation: `predict(images) -> numpy detection dict`.

    Besides the detections (see `postprocess.detections`) the outputs keep "instance_maps",
    "boxes", "peaks" and "emitted" bool [B, C, T] for the qualitative sheets.
    """

    def __init__(self, net: DecompNet, stop_threshold: float = 0.5, box_source: str = "regressor"):
        check_box_source(box_source)
        self.net, self.stop_threshold, self.box_source = net, stop_threshold, box_source
        self._fn = tf.function(self._forward, reduce_retracing=True)

    def _forward(self, images):
        out = with_box_source(self.net(images, training=False), self.box_source)
        dets = detections(out, self.stop_threshold, image_size=self.net.image_size)
        n = out["instance_maps"].shape[2]
        steps = dets["detection_steps"]
        classes = dets["detection_classes"]
        seg = tf.gather(tf.reshape(out["segmentation_scores"], (-1, self.net.num_classes * n)),
                        classes * n + steps, batch_dims=1)
        seg *= tf.cast(dets["detection_scores"] > 0, seg.dtype)
        alive = emitted(out, self.stop_threshold)
        return {**dets, "segmentation_scores": seg, "instance_maps": out["instance_maps"],
                "boxes": out["boxes"], "peaks": out["peaks"], "emitted": alive}

    def predict(self, images: np.ndarray) -> dict:
        return {k: v.numpy() for k, v in self._fn(tf.constant(images, tf.float32)).items()}

    def describe(self) -> dict:
        return {"kind": "decompnet", "stop_threshold": self.stop_threshold,
                "box_source": self.box_source,
                "config": self.net.get_config(), "windows_per_image": 0}


class TFLiteDetector:
    """An exported TFLite model as a detector (one image per invoke), for evaluate.py."""

    def __init__(self, path: str):
        from decompnet_tf.export.saved_model import OUTPUT_KEYS

        self.path, self.keys = path, OUTPUT_KEYS
        self.interpreter = tf.lite.Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    def predict(self, images: np.ndarray) -> dict:
        results = []
        for image in images:
            self.interpreter.set_tensor(self.input["index"], image[None].astype(np.float32))
            self.interpreter.invoke()
            results.append({k: self.interpreter.get_tensor(d["index"])
                            for k, d in zip(self.keys, self.outputs)})
        out = {k: np.concatenate([r[k] for r in results]) for k in self.keys}
        out["segmentation_scores"] = out["detection_scores"]
        return out

    def describe(self) -> dict:
        return {"kind": "tflite", "path": self.path, "windows_per_image": 0}
