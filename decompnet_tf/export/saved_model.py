"""The whole detector as a SavedModel (TF Serving's layout) and as TFLite models.

The graph holds decoding, resizing, the unrolled network, the stop rule and scores; outputs use
the TF Object Detection API's names. Class names travel as a labels file (line i: class id i).
"""

from __future__ import annotations

import os
import re
import tempfile

import tensorflow as tf

from decompnet_tf.config import InferenceConfig
from decompnet_tf.keras_compat import freeze_variables
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.postprocess import OUTPUT_KEYS, check_box_source, detections, with_scores

LABELS_FILE = "labels.txt"
# serving_boxes' outputs: everything but the full-size float masks.
BOX_KEYS = tuple(k for k in OUTPUT_KEYS if k != "detection_masks")


class DetectorModule(tf.Module):
    """Serving signatures around a trained DecompNet.

    serving_default(images): uint8 [B, height, width, 1 or 3] of any size, resized in the graph, so
    boxes are normalised to the original image and masks come back at its size. serve_encoded
    (string [B] PNG or JPEG bytes): masks at the instance maps' size. serving_boxes(images):
    serving_default without the masks. Outputs are `postprocess.detections`' (N = C * T).

    Args:
        net: a trained DecompNet.
        settings: the inference settings (stop threshold, box source, eq. 6's delta).
        class_names: the C class names, written as the labels file (default "0", "1", ...).
    """

    def __init__(self, net: DecompNet, settings: InferenceConfig | None = None,
                 class_names: list[str] | tuple[str, ...] | None = None):
        super().__init__()
        self.settings = settings or InferenceConfig()
        check_box_source(self.settings.box_source)
        self.net = net
        names = [str(i) for i in range(net.num_classes)] if class_names is None else [
            str(n) for n in class_names]
        if len(names) != net.num_classes or any(not n or "\n" in n for n in names):
            raise ValueError(f"class_names: expected {net.num_classes} non-empty one-line names "
                             f"(one per class of the model), got {names}")
        self.class_names = tuple(names)

    def _normalise(self, images):
        """uint8 [B, H, W, 1 or 3] -> float32 [B, h, w, channels] at the model's size, checked."""
        # A loaded signature does not check its input's rank, and the static rank (4, from the
        # signature) folds rank assertions away: EnsureShape checks the real tensor at run time.
        images = tf.ensure_shape(images, [None, None, None, None], name="images_rank_4")
        shape = tf.shape(images)
        checks = [
            tf.debugging.assert_positive(
                shape[0], message="images: the batch is empty (size 0); send at least one image"),
            tf.debugging.Assert(
                tf.logical_or(tf.equal(shape[3], 1), tf.equal(shape[3], 3)),
                ["images: expected 1 (grayscale) or 3 (RGB) channels in [batch, height, width, "
                 "channels], got channels =", shape[3]]),
            tf.debugging.assert_positive(
                shape[1] * shape[2], message="images: height and width must be positive"),
        ]
        with tf.control_dependencies(checks):
            x = tf.cast(images, tf.float32) / 255.0
        if self.net.channels == 3:  # RGB model (VGG16 backbone): grayscale is repeated.
            x = tf.cond(tf.equal(shape[3], 3), lambda: x,
                        lambda: tf.repeat(x[..., :1], 3, axis=-1))
        else:
            x = tf.cond(tf.equal(shape[3], 3), lambda: tf.image.rgb_to_grayscale(x),
                        lambda: x[..., :1])
        x = tf.ensure_shape(x, [None, None, None, self.net.channels])
        return tf.image.resize(x, self.net.image_size, method="bilinear")

    def _detect(self, x, mask_size):
        s = self.settings
        out = with_scores(self.net(x, training=False), s.box_source, s.segmentation_delta, x)
        dets = detections(out, s.stop_threshold, image_size=mask_size)
        return {k: dets[k] for k in OUTPUT_KEYS}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8,
                                                name="images")])
    def serve(self, images):
        return self._detect(self._normalise(images), tf.shape(images)[1:3])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8,
                                                name="images")])
    def serve_boxes(self, images):
        dets = self._detect(self._normalise(images), None)
        return {k: dets[k] for k in BOX_KEYS}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="encoded_images")])
    def serve_encoded(self, encoded_images):
        def decode(data):
            image = tf.io.decode_image(data, channels=self.net.channels,
                                       expand_animations=False)
            image = tf.image.resize(image, self.net.image_size, method="bilinear")
            return tf.cast(tf.round(image), tf.uint8)

        images = tf.map_fn(decode, encoded_images,
                           fn_output_signature=tf.TensorSpec(
                               [*self.net.image_size, self.net.channels], tf.uint8))
        return self._detect(self._normalise(images), None)

    def tflite_outputs(self, images):
        """float32 [1, H, W, channels] in [0, 1] -> the outputs as a tuple, in OUTPUT_KEYS order."""
        dets = self._detect(images, self.net.image_size)
        return tuple(dets[k] for k in OUTPUT_KEYS)


def write_labels(class_names: list[str] | tuple[str, ...], path: str) -> str:
    """Write the labels file (line i: the name of class id i); return its path."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    return path


def next_version(export_dir: str) -> int:
    """1 + the largest integer folder name under export_dir (1 when there is none)."""
    if not tf.io.gfile.isdir(export_dir):
        return 1
    versions = [int(d.rstrip("/")) for d in tf.io.gfile.listdir(export_dir)
                if re.fullmatch(r"\d+/?", d)]
    return max(versions, default=0) + 1


def export_saved_model(module: DetectorModule, export_dir: str, version: int | None = None):
    """Write export_dir/<version>/ (three signatures, assets/labels.txt); return its path."""
    version = version or next_version(export_dir)
    path = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(path):
        raise FileExistsError(f"{path} exists; TF Serving versions are immutable, pick another "
                              "--version or leave it out for the next free one")
    with tempfile.TemporaryDirectory() as tmp:
        # The labels file as an asset of the module: saving copies it into <version>/assets/.
        module.labels = tf.saved_model.Asset(
            write_labels(module.class_names, os.path.join(tmp, LABELS_FILE)))
        tf.saved_model.save(module, path, signatures={
            "serving_default": module.serve.get_concrete_function(),
            "serve_encoded": module.serve_encoded.get_concrete_function(),
            "serving_boxes": module.serve_boxes.get_concrete_function()})
    return path


def export_tflite(module: DetectorModule, path: str, quantize: bool = False) -> int:
    """Convert the batch-1 float graph to TFLite at `path`, labels.txt beside it; return its bytes.

    Variables are frozen into constants first (converting Keras 3 variables through a SavedModel
    gives NaN batch-norm constants in TF 2.21), and control flow stays functional While ops (the
    converter fails on Switch/Merge). `quantize` applies dynamic-range quantisation (int8 weights).
    """
    h, w = module.net.image_size
    fn = tf.function(module.tflite_outputs).get_concrete_function(
        tf.TensorSpec([1, h, w, module.net.channels], tf.float32, name="images"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [freeze_variables(fn, lower_control_flow=False)])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        data = converter.convert()
    except Exception as e:  # tf.lite's ConverterError lives in a private module.
        ops_line = next((line for line in str(e).splitlines() if "op is neither" in line), "")
        raise ValueError(f"TFLite conversion failed{': ' + ops_line.strip() if ops_line else ''}"
                         " (an op outside TFLite's builtins); the SavedModel is written: export "
                         "with --notflite, or report the op") from None
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)
    write_labels(module.class_names, os.path.join(os.path.dirname(path) or ".", LABELS_FILE))
    return len(data)
