"""The baseline's window set measured alone: window_recall against a pixel-counting reference,
and experiments/window_recall.py."""

import numpy as np
import pytest

from decompnet_tf.ops.windows import window_boxes, window_recall
from tests.helpers import run_script


def _pixel_iou(a, b, shape):
    """IoU of two integer pixel boxes (ymin, xmin, ymax, xmax) by counting pixels."""
    ma, mb = np.zeros(shape, bool), np.zeros(shape, bool)
    ma[a[0]:a[2], a[1]:a[3]] = True
    mb[b[0]:b[2], b[1]:b[3]] = True
    union = (ma | mb).sum()
    return (ma & mb).sum() / union if union else 0.0


def _brute_force(windows_px, boxes_px, shape, threshold=0.5):
    covered = objects = 0
    for boxes in boxes_px:
        for box in boxes:
            objects += 1
            covered += any(_pixel_iou(box, w, shape) >= threshold for w in windows_px)
    return covered, objects


def _normalised(px, shape):
    h, w = shape
    return np.asarray(px, np.float32).reshape(-1, 4) / np.array([h, w, h, w], np.float32)


def test_recall_of_placed_boxes_is_the_known_share():
    shape = (20, 20)
    windows = window_boxes(shape, 8, 8, 4, num_sizes=1)  # 8 px squares at x, y = 0, 4, 8, 12.
    assert len(windows) == 16
    boxes = [[0, 0, 8, 8],    # a window exactly: IoU 1
             [4, 8, 12, 15],  # 8x7 inside the window at (4, 8): IoU 56/64
             [2, 2, 10, 10],  # halfway between windows: IoU 36/92 < 0.5 with each
             [15, 15, 17, 17]]  # far smaller than any window: IoU 4/64
    r = window_recall(windows, [_normalised(boxes[:2], shape), _normalised(boxes[2:], shape),
                                _normalised([], shape)])
    assert (r["covered"], r["objects"], r["images"]) == (2, 4, 3)
    assert r["recall"] == 0.5 and r["windows_per_image"] == 16
    px = (windows * 20).round().astype(int)
    assert _brute_force(px, [boxes[:2], boxes[2:]], shape) == (2, 4)
    # A finer stride reaches the box between windows: (2, 2) is on a 2 px grid.
    assert window_recall(window_boxes(shape, 8, 8, 2, num_sizes=1),
                         [_normalised(boxes, shape)])["covered"] == 3


def test_recall_matches_pixel_counting_on_random_boxes():
    shape = (20, 30)  # Not square: normalised IoU must still equal the pixels' IoU.
    rng = np.random.default_rng(0)
    windows = window_boxes(shape, 6, 12, 3, num_sizes=3)  # Sides 6, 9, 12 px on a 3 px grid.
    windows_px = (windows * np.array([20, 30, 20, 30])).round().astype(int)
    assert np.allclose(windows_px / np.array([20, 30, 20, 30]), windows, atol=1e-6)
    images = []
    for n in (3, 0, 5, 4):
        y0, x0 = rng.integers(0, 14, n), rng.integers(0, 24, n)
        hh, ww = rng.integers(3, 7, n), rng.integers(3, 7, n)
        images.append(np.stack([y0, x0, y0 + hh, x0 + ww], 1))
    covered, objects = _brute_force(windows_px, images, shape)
    assert 0 < covered < objects == 12  # Some covered, some not: the test can tell them apart.
    r = window_recall(windows, [_normalised(b, shape) for b in images])
    assert (r["covered"], r["objects"]) == (covered, objects)
    assert r["recall"] == pytest.approx(covered / objects)


def test_no_objects_gives_nan_recall():
    r = window_recall(window_boxes((20, 20), 8, 8, 4, 1), [np.zeros((0, 4), np.float32)])
    assert np.isnan(r["recall"]) and r["objects"] == 0


def test_script_reports_the_window_set_on_the_validation_split(small_data_dir):
    import tensorflow_datasets as tfds

    from decompnet_tf.data.builders import open_builder

    proc = run_script("experiments/window_recall.py", f"--data_dir={small_data_dir}",
                      "--dataset=decomp_mnist/small", "--steps=3,5", "--split=validation",
                      "--validation_examples=100", "--max_images=40")
    assert proc.returncode == 0, proc.stderr[-3000:]
    builder = open_builder("decomp_mnist/small", small_data_dir)
    boxes = [ex["objects"]["bbox"] for ex in
             tfds.as_numpy(builder.as_dataset(split="validation[:100]").take(40))]
    rows = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            rows[int(parts[0])] = (int(parts[1]), parts[3])
    assert "(validation[:100]): 40 images" in proc.stdout
    for step, count in ((3, 2805), (5, 1038)):
        r = window_recall(window_boxes((100, 100), 10, 56, step), boxes)
        assert rows[step] == (count, f"{r['covered']}/{r['objects']}")


@pytest.mark.parametrize("steps, message", [("3,x", "'x' is not an integer"),
                                            ("0", "must be >= 1")])
def test_bad_steps_are_a_clear_error(steps, message):
    proc = run_script("experiments/window_recall.py", f"--steps={steps}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]
