"""export.py: SavedModel signatures and TFLite models reproduce the Keras model; bad input is a
clear error. The model is small and untrained: parity does not need trained weights, and a stop
threshold of 0 makes every instance map a detection, so every output is compared."""

import dataclasses
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.config import Config, InferenceConfig, ModelConfig, TrainConfig
from decompnet_tf.detectors.exported import run_tflite
from decompnet_tf.export.saved_model import (
    BOX_KEYS,
    LABELS_FILE,
    OUTPUT_KEYS,
    DetectorModule,
    export_saved_model,
    export_tflite,
    next_version,
)
from decompnet_tf.model_io import CONFIG_FILE, Run, build_net
from decompnet_tf.postprocess import detections, with_scores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The main job's architecture (configs/mnist_quick.flags), tiny.
TINY = ModelConfig(steps=3, instance_units=16, instance_filters=4, box_hidden=16,
                   instance_activation="linear", category_skips=True, instance_skips=True,
                   stop_head=True, instance_gated=True, instance_decoder="dynamic",
                   instance_image=True, box_input="state", stop_input="state_residual")
# The paper's (Appendix B: per-step deconvolutions, boxes from the maps), tiny.
PAPER_TINY = ModelConfig(steps=3, instance_units=16, instance_filters=4, box_hidden=16,
                         instance_activation="linear")
# Documented tolerances: float paths agree to float32 rounding; the dynamic-range model
# quantises weights to int8, so its maps may move by a few hundredths.
FLOAT_ATOL = 1e-4
QUANT_MASK_MEAN_ATOL = 0.05


def read_labels(path: str) -> list[str]:
    """The class names of a labels file as a client reads them (line i = class id i)."""
    with tf.io.gfile.GFile(path) as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    config = Config(model=TINY, train=TrainConfig(model_dir=str(path), stages=(1, 2)))
    net = build_net(config)
    os.makedirs(os.path.dirname(Run(str(path), config).final_weights(2)))
    net.save_weights(Run(str(path), config).final_weights(2))
    (path / CONFIG_FILE).write_text(config.to_json())
    return str(path)


def _export(model_dir, out, box_source):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"),
                           f"--model_dir={model_dir}", f"--export_dir={out}",
                           "--stop_threshold=0.0", f"--box_source={box_source}"],
                          capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    return _export(model_dir, str(tmp_path_factory.mktemp("export")), "regressor")


@pytest.fixture(scope="module")
def exported_component(model_dir, tmp_path_factory):
    """export.py with the boxes of the maps' main blobs, SavedModel and TFLite alike."""
    return _export(model_dir, str(tmp_path_factory.mktemp("export_component")), "component")


def _reference(model_dir, images_uint8, mask_size):
    from decompnet_tf.model_io import Run

    net = Run.open(model_dir).load_net()
    x = tf.image.resize(tf.cast(images_uint8, tf.float32) / 255.0, net.image_size)
    dets = detections(with_scores(net(x, training=False)), 0.0, image_size=mask_size)
    return {k: dets[k].numpy() for k in OUTPUT_KEYS}


def assert_same_detections(got, ref, atol, where="", masks=True):
    """Every reference detection is reproduced (class, box, score, mask within atol) and the
    counts agree. Detections are ranked by score, and an untrained model's scores can tie to
    within float rounding, so the order among near-equal scores is not compared."""
    np.testing.assert_array_equal(got["num_detections"], ref["num_detections"], where)
    for b in range(len(ref["num_detections"])):
        used = set()
        for i in range(int(ref["num_detections"][b])):
            close = [j for j in range(int(got["num_detections"][b])) if j not in used
                     and got["detection_classes"][b, j] == ref["detection_classes"][b, i]
                     and abs(got["detection_scores"][b, j] - ref["detection_scores"][b, i]) <= atol
                     and np.abs(got["detection_boxes"][b, j]
                                - ref["detection_boxes"][b, i]).max() <= atol
                     and ("detection_segmentation_scores" not in ref
                          or abs(got["detection_segmentation_scores"][b, j]
                                 - ref["detection_segmentation_scores"][b, i]) <= atol)
                     and (not masks or np.abs(got["detection_masks"][b, j]
                                              - ref["detection_masks"][b, i]).max() <= atol)]
            assert close, f"{where}: image {b}, reference detection {i} not reproduced"
            used.add(close[0])


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


LOAD_AND_CALL = r"""
import sys, numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
data = np.load(sys.argv[2])
out = {}
for name in ("gray", "odd"):
    res = model.signatures["serving_default"](images=tf.constant(data[name]))
    out.update({f"{name}/{k}": v.numpy() for k, v in res.items()})
enc = [open(p, "rb").read() for p in sys.argv[4:]]
res = model.signatures["serve_encoded"](encoded_images=tf.constant(enc))
out.update({f"png/{k}": v.numpy() for k, v in res.items()})
np.savez(sys.argv[3], **out)
"""


def test_saved_model_in_fresh_process_matches_keras(model_dir, exported, tmp_path):
    assert os.listdir(exported) and os.path.isdir(os.path.join(exported, "1"))
    gray = _images((2, 100, 100, 1))
    odd = _images((1, 60, 80, 1), seed=1)
    pngs = []
    for i, im in enumerate(gray):
        pngs.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(pngs[-1], im)
    np.savez(tmp_path / "in.npz", gray=gray, odd=odd)
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_CALL, os.path.join(exported, "1"),
                           str(tmp_path / "in.npz"), str(tmp_path / "out.npz"), *pngs],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name, images, size in (("gray", gray, (100, 100)), ("odd", odd, (60, 80)),
                               ("png", gray, None)):
        ref = _reference(model_dir, images, size)
        assert_same_detections({k: got[f"{name}/{k}"] for k in OUTPUT_KEYS}, ref, FLOAT_ATOL,
                               name)
    assert got["odd/detection_masks"].shape[-2:] == (60, 80)
    assert got["png/detection_masks"].shape[-2:] == (50, 50)


def test_rgb_is_converted_to_grayscale(model_dir):
    from decompnet_tf.model_io import Run

    net = Run.open(model_dir).load_net()
    module = DetectorModule(net, InferenceConfig(stop_threshold=0.0))
    rgb = _images((1, 100, 100, 3), seed=2)
    got = module.serve(tf.constant(rgb))
    gray = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(rgb, tf.float32))), tf.uint8)
    ref = module.serve(gray)
    # The rounding to uint8 grayscale moves values by < 0.5/255 before the network.
    assert_same_detections({k: v.numpy() for k, v in got.items()},
                           {k: v.numpy() for k, v in ref.items()}, 0.02, "rgb")


def test_saved_model_cli_lists_the_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli, "show", "--dir", os.path.join(exported, "1"), "--all"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for name in ("serving_default", "serve_encoded", "serving_boxes"):
        assert f"signature_def['{name}']" in text
    assert "dtype: DT_UINT8" in text and "dtype: DT_STRING" in text
    for key in OUTPUT_KEYS:
        assert f"outputs['{key}']" in text


def test_tflite_models_match_keras(model_dir, exported):
    image = _images((1, 100, 100, 1), seed=3)
    ref = _reference(model_dir, image, (100, 100))
    x = image.astype(np.float32) / 255.0
    got = run_tflite(os.path.join(exported, "model.tflite"), x)
    assert_same_detections(got, ref, FLOAT_ATOL, "tflite")
    quant = run_tflite(os.path.join(exported, "model_dynamic_range.tflite"), x)
    assert quant["detection_masks"].shape == ref["detection_masks"].shape
    assert np.abs(quant["detection_masks"] - ref["detection_masks"]).mean() < (
        QUANT_MASK_MEAN_ATOL)
    assert os.path.getsize(os.path.join(exported, "model_dynamic_range.tflite")) < (
        os.path.getsize(os.path.join(exported, "model.tflite")))


def _untrained_export(config, path, seed):
    """An untrained model of `config` as a DetectorModule (stop 0) and a float TFLite file at
    `path`, a uint8 image [1, 100, 100, 1] from `seed`, and the Keras model's detections of it."""
    from decompnet_tf.models.decompnet import DecompNet

    net = DecompNet(config)
    net.build()
    module = DetectorModule(net, InferenceConfig(stop_threshold=0.0))
    export_tflite(module, path)
    image = _images((1, 100, 100, 1), seed=seed)
    x = image.astype(np.float32) / 255.0
    ref = detections(with_scores(net(x, training=False)), 0.0, image_size=(100, 100))
    return module, image, {k: ref[k].numpy() for k in OUTPUT_KEYS}


def test_paper_architecture_tflite_matches_keras(tmp_path):
    path = str(tmp_path / "paper.tflite")
    _, image, ref = _untrained_export(PAPER_TINY, path, seed=6)
    x = image.astype(np.float32) / 255.0
    assert_same_detections(run_tflite(path, x), ref, FLOAT_ATOL, "paper tflite")


def test_centre_maps_as_inputs_serve_as_keras(tmp_path):
    """--instance_centers and the stop head's centre features, through the SavedModel module and
    TFLite."""
    keras.utils.set_random_seed(2)
    path = str(tmp_path / "centres.tflite")
    module, image, ref = _untrained_export(
        dataclasses.replace(TINY, center_head=True, instance_centers=True,
                            stop_input="state_residual_centers"), path, seed=7)
    served = {k: v.numpy() for k, v in module.serve(tf.constant(image)).items()}
    assert_same_detections(served, ref, FLOAT_ATOL, "centres, saved model function")
    x = image.astype(np.float32) / 255.0
    assert_same_detections(run_tflite(path, x), ref, FLOAT_ATOL, "centres, tflite")


def test_versions(model_dir, tmp_path):
    from decompnet_tf.model_io import Run

    net = Run.open(model_dir).load_net()
    module = DetectorModule(net)
    assert next_version(str(tmp_path)) == 1
    os.makedirs(tmp_path / "3")
    assert next_version(str(tmp_path)) == 4
    with pytest.raises(FileExistsError, match="immutable"):
        export_saved_model(module, str(tmp_path), 3)


@pytest.mark.parametrize("images, match", [
    (np.zeros((1, 100, 100, 2), np.uint8), "1 \\(grayscale\\) or 3 \\(RGB\\) channels"),
    (np.zeros((0, 100, 100, 1), np.uint8), "the batch is empty"),
])
def test_bad_images_are_invalid_argument_errors(exported, images, match):
    model = tf.saved_model.load(os.path.join(exported, "1"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        model.signatures["serving_default"](images=tf.constant(images))


def test_wrong_dtype_rank_and_bytes(exported):
    model = tf.saved_model.load(os.path.join(exported, "1"))
    sig = model.signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="uint8"):
        sig(images=tf.zeros((1, 100, 100, 1), tf.float32))
    rank = r"images \[100,100,1\] is not compatible with expected shape \[\?,\?,\?,\?\]"
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match=rank):
        sig(images=tf.zeros((100, 100, 1), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)image"):
        model.signatures["serve_encoded"](encoded_images=tf.constant([b"not an image"]))


def test_tflite_detector_for_evaluate_batches_images(exported):
    from decompnet_tf.detectors.exported import TFLiteDetector

    path = os.path.join(exported, "model.tflite")
    images = _images((3, 100, 100, 1), seed=4).astype(np.float32) / 255.0
    out = TFLiteDetector(path).predict(images)
    assert out["detection_masks"].shape[0] == 3 and out["detection_masks"].shape[-2:] == (100, 100)
    for i in range(3):
        one = run_tflite(path, images[i:i + 1])
        np.testing.assert_array_equal(out["detection_boxes"][i], one["detection_boxes"][0])


def test_rgb_model_serves_rgb_and_matches_keras(tmp_path):
    from decompnet_tf.models.decompnet import DecompNet

    net = DecompNet(ModelConfig(num_classes=1, steps=2, image_size=(64, 96), backbone="vgg16",
                                backbone_weights="none", instance_pool=2, instance_units=8,
                                instance_filters=4, box_hidden=8))
    net.build()
    module = DetectorModule(net, InferenceConfig(stop_threshold=0.0))
    path = export_saved_model(module, str(tmp_path / "export"))
    served = tf.saved_model.load(path).signatures["serving_default"]
    rgb = _images((2, 64, 96, 3), seed=3)
    got = {k: v.numpy() for k, v in served(images=tf.constant(rgb)).items()}
    x = tf.cast(rgb, tf.float32) / 255.0
    ref = detections(with_scores(net(x, training=False)), 0.0, image_size=(64, 96))
    assert_same_detections(got, {k: ref[k].numpy() for k in OUTPUT_KEYS}, FLOAT_ATOL, "vgg")
    # Grayscale input to an RGB model is repeated over the three channels.
    gray = _images((1, 64, 96, 1), seed=4)
    got = {k: v.numpy() for k, v in served(images=tf.constant(gray)).items()}
    x = tf.repeat(tf.cast(gray, tf.float32) / 255.0, 3, axis=-1)
    ref = detections(with_scores(net(x, training=False)), 0.0, image_size=(64, 96))
    assert_same_detections(got, {k: ref[k].numpy() for k in OUTPUT_KEYS}, FLOAT_ATOL, "gray")


@pytest.mark.parametrize("box_source", ["regressor", "component"])
def test_every_export_gives_the_keras_detectors_detections(model_dir, exported,
                                                            exported_component, box_source):
    """serving_default, serving_boxes and the float TFLite file against DecompDetector (the
    Keras model evaluate.py scores) with the same settings; the labels files name the
    dataset's classes in class id order."""
    from decompnet_tf.detectors.decompnet import DecompDetector
    from decompnet_tf.model_io import Run

    out = exported if box_source == "regressor" else exported_component
    net = Run.open(model_dir).load_net()
    keras = DecompDetector(net, InferenceConfig(stop_threshold=0.0, box_source=box_source))
    images = _images((2, 100, 100, 1), seed=7)
    ref = keras.predict(images.astype(np.float32) / 255.0)
    served = tf.saved_model.load(os.path.join(out, "1"))
    got = served.signatures["serving_default"](images=tf.constant(images))
    assert_same_detections({k: v.numpy() for k, v in got.items()}, ref, FLOAT_ATOL, "default")
    boxes = served.signatures["serving_boxes"](images=tf.constant(images))
    assert sorted(boxes) == sorted(BOX_KEYS)  # No masks.
    assert_same_detections({k: v.numpy() for k, v in boxes.items()}, ref, FLOAT_ATOL, "boxes",
                           masks=False)
    tflite = os.path.join(out, "model.tflite")
    for i in range(2):
        one = {k: v[i:i + 1] for k, v in ref.items()}
        assert_same_detections(run_tflite(tflite, images[i:i + 1] / np.float32(255.0)), one,
                               FLOAT_ATOL, f"tflite {i}")
    # decomp_mnist's classes (the model's dataset), line i = class id i.
    assert read_labels(os.path.join(out, "1", "assets", LABELS_FILE)) == ["3", "6", "9"]
    assert read_labels(os.path.join(out, LABELS_FILE)) == ["3", "6", "9"]
    assert os.path.isfile(os.path.join(out, "model_dynamic_range.tflite"))


@pytest.mark.parametrize("box_source", ["mask", "component", "refined"])
def test_map_boxes_in_saved_model_and_tflite(model_dir, tmp_path, box_source):
    from decompnet_tf.model_io import Run

    net = Run.open(model_dir).load_net()
    module = DetectorModule(net, InferenceConfig(stop_threshold=0.0, box_source=box_source),
                            class_names=["three", "six", "nine"])
    images = _images((2, 100, 100, 1), seed=5)
    x = tf.cast(images, tf.float32) / 255.0
    out = net(x, training=False)
    ref = detections(with_scores(out, box_source, images=x), 0.0, image_size=(100, 100))
    ref = {k: ref[k].numpy() for k in OUTPUT_KEYS}
    path = export_saved_model(module, str(tmp_path / "e"))
    served = tf.saved_model.load(path)
    got = served.signatures["serving_default"](images=tf.constant(images))
    assert_same_detections({k: v.numpy() for k, v in got.items()}, ref, FLOAT_ATOL, "saved")
    assert read_labels(os.path.join(path, "assets", LABELS_FILE)) == ["three", "six", "nine"]
    tflite = str(tmp_path / "tfl" / "m.tflite")
    os.makedirs(os.path.dirname(tflite))
    export_tflite(module, tflite)
    assert read_labels(os.path.join(os.path.dirname(tflite), LABELS_FILE)) == [
        "three", "six", "nine"]
    for i in range(2):
        assert_same_detections(run_tflite(tflite, x[i:i + 1].numpy()),
                               {k: v[i:i + 1] for k, v in ref.items()}, FLOAT_ATOL, f"tfl {i}")
    with pytest.raises(ValueError, match="box_source"):
        DetectorModule(net, InferenceConfig(box_source="anchors"))
    with pytest.raises(ValueError, match="class_names: expected 3"):
        DetectorModule(net, class_names=["3", "6"])


COMPONENT_IN_TFLITE = r"""
import sys, numpy as np, tensorflow as tf
from decompnet_tf.postprocess import main_component, mask_boxes

maps = np.load(sys.argv[1])


def boxes_and_blobs(m):
    on = main_component(m)
    return mask_boxes(m, on=on), tf.cast(on, tf.float32)


fn = tf.function(boxes_and_blobs).get_concrete_function(tf.TensorSpec(maps.shape, tf.float32))
interpreter = tf.lite.Interpreter(
    model_content=tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert())
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], maps)
interpreter.invoke()
boxes, blobs = (interpreter.get_tensor(d["index"]) for d in
                sorted(interpreter.get_output_details(), key=lambda d: len(d["shape"])))
np.savez(sys.argv[2], boxes=boxes, blobs=blobs)
"""


def test_main_component_runs_in_tflite_as_the_scipy_reference(tmp_path):
    """The blob labelling (a while loop of max-pools) converted alone and run by the TFLite
    interpreter on the reference maps: ties, empty maps, a snake longer than any small
    iteration bound; [B, C, T, h, w] maps as the detector has them. In a subprocess: the
    interpreter aborts the process on some graphs (a 5-D broadcast LOGICAL_AND did)."""
    from decompnet_tf.postprocess import mask_boxes
    from tests.test_postprocess import component_reference, component_test_maps

    maps = component_test_maps().reshape(1, 4, 12, 16, 15)
    np.save(tmp_path / "maps.npy", maps)
    proc = subprocess.run([sys.executable, "-c", COMPONENT_IN_TFLITE, str(tmp_path / "maps.npy"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, f"rc {proc.returncode}: {proc.stderr[-2000:]}"
    got = np.load(tmp_path / "out.npz")
    ref = component_reference(maps.reshape(-1, 16, 15)).reshape(maps.shape)
    np.testing.assert_array_equal(got["blobs"].astype(bool), ref)
    np.testing.assert_allclose(got["boxes"], mask_boxes(maps, on=ref).numpy(), atol=1e-6)


@pytest.mark.slow(45)  # seconds on 2 busy cores, with the small dataset's build
def test_saved_model_detector_scores_as_the_keras_detector(model_dir, exported_component,
                                                           small_data_dir, tmp_path):
    """evaluate.py --saved_model: the SavedModel's serving_default through evaluate's runner
    gives the Keras DecompDetector's metrics (same settings as the export)."""
    from decompnet_tf.data.builders import open_builder
    from decompnet_tf.detectors import (
        DecompDetector,
        DetectorSpec,
        SavedModelDetector,
        load_detector,
    )
    from decompnet_tf.eval import runner
    from decompnet_tf.model_io import Run

    run = Run.open(model_dir)
    settings = InferenceConfig(stop_threshold=0.0, box_source="component")
    path = os.path.join(exported_component, "1")
    detector, _ = load_detector(run, DetectorSpec(settings, saved_model=path),
                                data_dir=small_data_dir)
    assert isinstance(detector, SavedModelDetector)
    builder = open_builder("decomp_mnist/small", small_data_dir)
    keras = DecompDetector(load_detector(run, DetectorSpec(settings),
                                         data_dir=small_data_dir)[0].net, settings)

    def metrics(d, name):
        m = runner.evaluate_split(d, builder, "test", str(tmp_path / name), batch_size=4,
                                  max_images=8, num_sheets=0)
        # Only the Keras model exposes its category maps (the exports return detections).
        m["breakdown"].pop("category_map_recall_by_size", None)
        return {k: v for k, v in m.items() if k not in ("speed", "model")}

    got, ref = metrics(detector, "saved"), metrics(keras, "keras")
    assert got.keys() == ref.keys() and "detection" in ref
    got, ref = _flatten(got), _flatten(ref)
    assert got.keys() == ref.keys()
    for k, v in ref.items():
        assert got[k] == v or (isinstance(v, float) and abs(got[k] - v) <= 1e-6), k
    with pytest.raises(ValueError, match="not uint8 pixels / 255"):
        detector.predict(np.full((1, 100, 100, 1), 0.5, np.float32))
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        load_detector(run, DetectorSpec(settings, saved_model=str(tmp_path)),
                      data_dir=small_data_dir)


def _flatten(tree, prefix=""):
    """Nested dicts / lists of numbers -> {path: float} (NaN as a string, so it compares)."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items()
                for k, v in _flatten(sub, f"{prefix}/{key}").items()}
    if isinstance(tree, (list, tuple, np.ndarray)):
        return {k: v for i, sub in enumerate(tree)
                for k, v in _flatten(sub, f"{prefix}/{i}").items()}
    if isinstance(tree, (int, float, np.number)) and not isinstance(tree, bool):
        return {prefix: "nan" if np.isnan(tree) else float(tree)}
    return {prefix: tree}


def test_a_baseline_model_dir_is_refused_with_the_reason(tmp_path):
    from decompnet_tf.model_io import Run, build_classifier
    from tests.helpers import run_script

    model_dir = tmp_path / "baseline"
    config = Config(kind="baseline", train=TrainConfig(model_dir=str(model_dir), stages=(1,)))
    os.makedirs(model_dir / "baseline")
    (model_dir / CONFIG_FILE).write_text(config.to_json())
    build_classifier(config).save_weights(Run.open(str(model_dir)).classifier_weights())
    proc = run_script("export.py", f"--model_dir={model_dir}",
                      f"--export_dir={tmp_path / 'out'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "holds the sliding-window baseline" in proc.stderr
    assert "no training stage has finished" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_labels_fall_back_to_class_ids_for_an_unknown_dataset(tmp_path):
    import dataclasses

    from tests.helpers import run_script

    model_dir = tmp_path / "model"
    config = Config(model=TINY, train=TrainConfig(model_dir=str(model_dir), stages=(1, 2)))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data,
                                                                  dataset="no_such_dataset"))
    net = build_net(config)
    os.makedirs(os.path.dirname(Run(str(model_dir), config).final_weights(2)))
    net.save_weights(Run(str(model_dir), config).final_weights(2))
    (model_dir / CONFIG_FILE).write_text(config.to_json())
    proc = run_script("export.py", f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'e'}",
                      "--notflite")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "labels.txt lists the class ids" in proc.stdout
    assert read_labels(str(tmp_path / "e" / "1" / "assets" / LABELS_FILE)) == ["0", "1", "2"]


@pytest.mark.slow(45)
def test_export_uses_the_stored_inference_settings(model_dir, tmp_path):
    import shutil

    from decompnet_tf.model_io import Run
    from tests.helpers import run_script

    stored = InferenceConfig(stop_threshold=0.0, box_source="component")
    copy = str(shutil.copytree(model_dir, tmp_path / "run"))
    Run.open(copy).with_inference(stored)
    # No flags: the SavedModel and the TFLite files carry the stored settings.
    proc = run_script("export.py", f"--model_dir={copy}", f"--export_dir={tmp_path / 'e'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("inference settings: stop_threshold=0.0 (stored), segmentation_delta=0.1 (stored), "
            "box_source=component (stored)") in proc.stdout
    net = Run.open(copy).load_net()
    images = _images((2, 100, 100, 1), seed=6)
    served = tf.saved_model.load(str(tmp_path / "e" / "1")).signatures["serving_default"]
    got = {k: v.numpy() for k, v in served(images=tf.constant(images)).items()}
    module = DetectorModule(net, stored)  # Held: serve's trace refers to it weakly.
    ref = module.serve(tf.constant(images))
    assert_same_detections(got, {k: v.numpy() for k, v in ref.items()}, FLOAT_ATOL, "stored")
    lite = run_tflite(str(tmp_path / "e" / "model.tflite"), images[:1].astype(np.float32) / 255)
    assert_same_detections(lite, {k: v.numpy()[:1] for k, v in ref.items()}, FLOAT_ATOL,
                           "stored, TFLite")
    regressor = DetectorModule(net, InferenceConfig())
    default = regressor.serve(tf.constant(images))
    assert not np.array_equal(got["num_detections"], default["num_detections"].numpy()) or \
        not np.allclose(got["detection_boxes"], default["detection_boxes"].numpy(), atol=1e-3)
