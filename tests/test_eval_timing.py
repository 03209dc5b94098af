"""The evaluation's speed figures: model calls timed without tracing, and speed ratios taken
within one evaluate.py --compare run."""

import json
import re
import shutil
import time

import numpy as np
import pytest

from decompnet_tf.eval import runner
from tests.helpers import run_script

SLEEP = 0.3  # s: what a trace costs the fake detector, far above its 1 ms per call.


class TracingDetector:
    """Sleeps like a tf.function tracing on its first call and on every new batch size;
    one box per image, a function of its pixels."""

    def __init__(self):
        self.sizes, self.calls = set(), 0

    def predict(self, images, gts=None):
        self.calls += 1
        if len(images) not in self.sizes:
            self.sizes.add(len(images))
            time.sleep(SLEEP)
        time.sleep(0.001)
        return _outputs(images)

    def describe(self):
        return {"kind": "fake"}


def _outputs(images):
    mean = images.mean(axis=(1, 2, 3))
    boxes = np.stack([mean * 0.5, mean * 0.4, mean * 0.5 + 0.3, mean * 0.4 + 0.2], 1)
    return {"detection_boxes": boxes[:, None].astype(np.float32),
            "detection_classes": (mean * 30).astype(np.int64)[:, None] % 3,
            "detection_scores": mean[:, None], "num_detections": np.ones(len(images))}


def test_tracing_and_a_short_last_batch_are_not_timed():
    rng = np.random.default_rng(0)
    images = rng.random((10, 8, 8, 1)).astype(np.float32)
    gts = [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int), "masks": None}] * 10
    batches = ((images[i:i + 4], gts[i:i + 4]) for i in range(0, 10, 4))  # 4, 4, 2 images.
    detector = TracingDetector()
    dets, out_gts, seconds, timed, first = runner.run_detector(detector, batches, 0.5)
    # Two sleeps (the first call, the short batch's new size) would make it >= 60 ms/image.
    ms = runner.speed(seconds, timed, 4)["ms_per_image"]
    assert ms < 0.1 * 2 * SLEEP * 1000 / 10, ms
    assert timed == 8  # The full batches; the short one is predicted, untimed.
    assert detector.calls == 4  # One warm-up call on the first batch, then each batch once.
    assert len(dets) == len(out_gts) == 10
    expected = _outputs(images)
    for i, det in enumerate(dets):
        np.testing.assert_array_equal(det["boxes"], expected["detection_boxes"][i])
        np.testing.assert_array_equal(det["scores"], expected["detection_scores"][i])
        np.testing.assert_array_equal(det["classes"], expected["detection_classes"][i])
    np.testing.assert_array_equal(first[0], images[:4])


def test_one_short_batch_is_timed_after_its_warm_up():
    images = np.ones((3, 8, 8, 1), np.float32)
    loop = runner.PredictionLoop(TracingDetector())
    outs = list(loop([(images, [{}] * 3)]))
    assert len(outs) == 1 and loop.timed_images == loop.images == 3
    assert loop.seconds < SLEEP / 2


def _metrics(ms):
    per_class = {k: {"ap_voc": 0.5, "recall_at_precision_0.84": 0.4} for k in range(3)}
    return {"detection": {"iou_0.5": per_class}, "counting": {"accuracy": 0.5},
            "speed": {"ms_per_image": ms}}


def test_table_gives_speed_relative_to_the_first_model():
    names = ["3", "6", "9"]
    assert runner.table_header(names, compare=True).endswith("ms/img vs first")
    assert runner.table_header(names).endswith("ms/img")
    assert runner.summary_row("decompnet", _metrics(12.5), names, 12.5).endswith("1.00x")
    assert runner.summary_row("baseline", _metrics(104.5), names, 12.5).endswith("8.36x")
    assert runner.summary_row("alone", _metrics(7.0), names).endswith("7.00")  # No ratio.


@pytest.mark.slow(20)
def test_compare_prints_ratios_from_one_run(trained_run, tmp_path):
    # Two dirs of one name (seeds of two arms): rows and folders named by what tells them apart.
    a, b = tmp_path / "a" / "seed0", tmp_path / "b" / "seed0"
    shutil.copytree(trained_run, a)
    shutil.copytree(trained_run, b)
    out = tmp_path / "out"
    proc = run_script("evaluate.py", f"--compare={a},{b}", f"--output_dir={out}",
                      "--max_images=8", "--batch_size=4", "--num_sheets=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^([ab])/seed0 .* ([0-9.]+) +([0-9.]+)x$", proc.stdout, re.M)}
    ms = {n: json.load(open(out / f"{n}_seed0" / "metrics.json"))["speed"]["ms_per_image"]
          for n in "ab"}
    assert rows["a"] == (pytest.approx(ms["a"], abs=0.01), 1.0)
    assert rows["b"][1] == pytest.approx(ms["b"] / ms["a"], abs=0.01)


def _untrained_baseline(model_dir, data_dir):
    import dataclasses

    from decompnet_tf.config import Config, DataConfig, TrainConfig
    from decompnet_tf.model_io import Run, build_classifier

    config = dataclasses.replace(
        Config(), kind="baseline",
        data=DataConfig(dataset="decomp_mnist/small", data_dir=data_dir),
        train=TrainConfig(model_dir=str(model_dir)))
    Run.start(config)
    (model_dir / "baseline").mkdir()
    build_classifier(config).save_weights(Run.open(str(model_dir)).classifier_weights())


@pytest.mark.slow(25)
def test_compare_evaluates_a_baseline_at_each_window_step(trained_run, small_data_dir, tmp_path):
    # Figure 4's comparison in one run: decompNet and the baseline at strides 10 and 20, rows of
    # one table (ratios against the first) and curves of one PR figure.
    base = tmp_path / "base"
    _untrained_baseline(base, small_data_dir)
    out = tmp_path / "out"
    proc = run_script("evaluate.py", f"--compare={trained_run},{base}", f"--output_dir={out}",
                      "--window_steps=10,20", "--max_images=4", "--batch_size=4",
                      "--num_sheets=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for step in (10, 20):
        m = json.load(open(out / f"base_step{step}" / "metrics.json"))
        assert m["model"]["step"] == step
        assert re.search(rf"^base@{step} .* [0-9.]+x$", proc.stdout, re.M), proc.stdout
    windows = [json.load(open(out / f"base_step{s}" / "metrics.json"))["model"]
               ["windows_per_image"] for s in (10, 20)]
    assert windows[0] > 3 * windows[1]  # A stride twice as long: about 4x fewer windows.
    assert (out / "pr_detection.png").stat().st_size > 0
    bad = run_script("evaluate.py", f"--model_dir={base}", "--window_steps=3,x")
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith(
        "error: --window_steps=3,x")
    # The former name still works for one version, and says so.
    old = run_script("evaluate.py", f"--model_dir={base}", "--window_step=3,x")
    assert "warning: --window_step is deprecated" in old.stderr
    assert old.stderr.strip().splitlines()[-1].startswith("error: --window_steps=3,x")
