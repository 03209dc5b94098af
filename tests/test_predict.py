"""predict.py: your own images through the serving graph with the model's stored settings,
written as pictures and detections.json; bad input is a one-line error."""

import dataclasses
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from decompnet_tf.config import InferenceConfig
from tests.helpers import run_script

# Stored in the model dir: a stop threshold of 0 makes every step of the untrained tiny model a
# detection, so every output is compared; blob boxes and masks at 0.3 are not the defaults.
STORED = InferenceConfig(stop_threshold=0.0, mask_threshold=0.3, box_source="component")
ATOL = 1e-4


@pytest.fixture(scope="module")
def model_dir(trained_run, tmp_path_factory):
    from decompnet_tf.model_io import Run

    path = str(shutil.copytree(trained_run, tmp_path_factory.mktemp("predict") / "run"))
    Run.open(path).with_inference(STORED)
    return path


@pytest.fixture(scope="module")
def images(small_data_dir, tmp_path_factory):
    """{name: (path, uint8 array as written)}: a decomp_mnist test image (gray, the model's
    100x100), a gray image of another size and an RGB one, as PNG files."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    builder = tfds.builder("decomp_mnist/small", data_dir=small_data_dir)
    digit = next(iter(tfds.as_numpy(builder.as_dataset(split="test").take(1))))["image"]
    rng = np.random.default_rng(0)
    arrays = {"digits": digit[..., 0],
              "gray": cv2.resize(digit[..., 0], (130, 70)),
              "rgb": rng.integers(0, 256, (90, 110, 3)).astype(np.uint8)}
    folder = tmp_path_factory.mktemp("images")
    out = {}
    for name, a in arrays.items():
        path = str(folder / f"{name}.png")
        cv2.imwrite(path, a if a.ndim == 2 else cv2.cvtColor(a, cv2.COLOR_RGB2BGR))
        out[name] = (path, a if a.ndim == 3 else a[..., None])
    return out


def _detections(record):
    d = record["detections"]
    return (np.array([x["box"] for x in d], np.float32).reshape(-1, 4),
            np.array([x["class_id"] for x in d]), np.array([x["score"] for x in d]))


@pytest.mark.slow(30)
def test_predict_writes_the_serving_graphs_detections(model_dir, images):
    from decompnet_tf import viz
    from decompnet_tf.detectors.decompnet import DecompDetector
    from decompnet_tf.export.saved_model import DetectorModule
    from decompnet_tf.model_io import Run
    from decompnet_tf.predict_io import detect

    out = os.path.join(model_dir, "predictions")  # The default --output_dir.
    paths = [images[n][0] for n in ("digits", "gray", "rgb")]
    proc = run_script("predict.py", f"--model_dir={model_dir}", f"--images={','.join(paths)}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("inference settings: stop_threshold=0.0 (stored), mask_threshold=0.3 (stored), "
            "segmentation_delta=0.1 (stored), box_source=component (stored)") in proc.stdout
    result = json.load(open(os.path.join(out, "detections.json")))
    assert result["inference"] == dataclasses.asdict(STORED)
    net = Run.open(model_dir).load_net()
    module = DetectorModule(net, STORED)
    for record, name in zip(result["images"], ("digits", "gray", "rgb")):
        path, array = images[name]
        h, w, c = array.shape
        assert (record["path"], record["height"], record["width"], record["channels"]) == (
            path, h, w, c)
        # The serving graph on the same pixels, in this process: the same detections.
        ref = detect(module, array)
        boxes, classes, scores = _detections(record)
        assert len(scores) == len(ref["detection_scores"]) == 3 * 3  # C x T, stop threshold 0.
        np.testing.assert_array_equal(classes, ref["detection_classes"])
        np.testing.assert_allclose(scores, ref["detection_scores"], atol=ATOL)
        np.testing.assert_allclose(boxes, ref["detection_boxes"], atol=ATOL)
        for det in record["detections"]:
            assert det["class_name"] == ("3", "6", "9")[det["class_id"]]
            np.testing.assert_allclose(det["box_pixels"], np.array(det["box"]) * [h, w, h, w])
        # The picture: the image at its own size with those detections drawn.
        picture = cv2.cvtColor(cv2.imread(record["picture"]), cv2.COLOR_BGR2RGB)
        assert os.path.basename(record["picture"]) == f"{name}_detections.png"
        drawn = viz.draw_detections(array, ref["detection_boxes"], ref["detection_classes"],
                                    ref["detection_scores"], ref["detection_masks"],
                                    ["3", "6", "9"], STORED.mask_threshold)
        assert picture.shape == (h, w, 3)
        assert np.mean(np.abs(picture.astype(int) - drawn)) < 1.0  # Masks may flip at 0.3.
        assert np.mean(picture != viz.to_rgb(array)) > 0.01  # Something was drawn.
    # At the model's size the serving graph is the evaluated detector (DecompDetector).
    digits = images["digits"][1]
    ref = DecompDetector(net, STORED).predict(digits[None].astype(np.float32) / 255.0)
    boxes, classes, scores = _detections(result["images"][0])
    assert len(scores) == int(ref["num_detections"][0])
    for i in range(len(scores)):  # Any order among near-equal scores.
        assert any(classes[i] == ref["detection_classes"][0, j]
                   and abs(scores[i] - ref["detection_scores"][0, j]) <= ATOL
                   and np.abs(boxes[i] - ref["detection_boxes"][0, j]).max() <= ATOL
                   for j in range(len(scores))), f"detection {i} not in DecompDetector's"


@pytest.mark.slow(20)
def test_a_missing_image_is_a_one_line_error(model_dir, tmp_path):
    proc = run_script("predict.py", f"--model_dir={model_dir}",
                      f"--images={tmp_path / 'missing.png'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"error: {tmp_path / 'missing.png'}: no such image file; pass existing " \
        "files in --images", last


def test_read_image_refuses_what_is_not_an_image_and_drops_alpha(tmp_path):
    from decompnet_tf.predict_io import read_image

    text = tmp_path / "text.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="text.png is not a readable image"):
        read_image(str(text))
    with pytest.raises(FileNotFoundError, match="no such image file"):
        read_image(str(tmp_path))  # A folder.
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(read_image(str(tmp_path / "rgba.png")), rgba[..., :3])
    gray = rgba[..., 0]
    cv2.imwrite(str(tmp_path / "gray.jpg"), gray, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert read_image(str(tmp_path / "gray.jpg")).shape == (5, 7, 1)


def test_class_names_are_none_for_an_unknown_dataset():
    from decompnet_tf.config import Config, DataConfig
    from decompnet_tf.model_io import Run

    config = Config(data=DataConfig(dataset="no_such_dataset/at_all"))
    assert Run("unused", config).class_names() is None
