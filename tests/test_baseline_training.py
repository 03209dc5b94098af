"""train.py --model=baseline end to end on decomp_mnist/small: hard negatives are mined, a
killed run resumes after its last finished epoch, a finished run is not trained again (the
paper's classifier); the box regression trains and evaluate.py reads its boxes."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.helpers import ROOT, kill_after_first_epoch

FLAGS = ["--model=baseline", "--dataset=decomp_mnist/small", "--train_examples=48",
         "--validation_examples=100", "--batch_size=8", "--epochs=4", "--verbose=2",
         "--mine_images=8", "--hard_negative_min_score=0", "--background_share=0.5",
         "--learning_rates=0.002", "--lr_decay=0.5", "--nobaseline_box_regression"]


def _cmd(data_dir, model_dir):
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", *FLAGS]


def _state(model_dir):
    with open(os.path.join(model_dir, "baseline", "backup", "state.json")) as f:
        return json.load(f)


def _optimizer(model_dir):
    """(iterations, learning rate) of the last epoch's checkpoint."""
    path = os.path.join(model_dir, "baseline", "backup", _state(model_dir)["weights"])
    with h5py.File(path) as f:
        return int(f["optimizer/vars/0"][()]), float(f["optimizer/vars/1"][()])


@pytest.mark.slow(40)
def test_killed_baseline_resumes_and_a_finished_one_skips(small_data_dir, tmp_path):
    model_dir = str(tmp_path / "baseline")
    state = os.path.join(model_dir, "baseline", "backup", "state.json")
    kill_after_first_epoch(_cmd(small_data_dir, model_dir), state)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    final = os.path.join(model_dir, "baseline", "final.weights.h5")
    assert not os.path.isfile(final)
    done = _state(model_dir)["epoch"]
    steps, rate = _optimizer(model_dir)
    steps //= done
    assert rate == pytest.approx(0.002 * 0.5 ** (done - 1))  # --lr_decay after every epoch
    resumed = subprocess.run(_cmd(small_data_dir, model_dir), capture_output=True, text=True,
                             env=env, timeout=300)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f"resumed after epoch {done}" in log
    assert f"Epoch {done}/{done}" not in log and "Epoch 4/4" in log
    # The restored optimizer counted the epochs before the kill: each epoch has as many steps.
    # The resumed run continued the rate's decay where the killed one left it.
    assert _optimizer(model_dir) == (4 * steps, pytest.approx(0.002 * 0.5 ** 3))
    assert _state(model_dir)["epoch"] == 4
    # Rounds of mining found background windows, kept with the checkpoint.
    assert "hard negatives from 8 images" in log and len(_state(model_dir)["hard"]) > 0
    assert os.path.isfile(final)
    again = subprocess.run(_cmd(small_data_dir, model_dir), capture_output=True, text=True,
                           env=env, timeout=300)
    assert again.returncode == 0
    assert "baseline: finished earlier" in again.stdout + again.stderr
    assert "Epoch" not in again.stdout + again.stderr


@pytest.mark.slow(40)
def test_box_regression_trains_and_evaluate_reads_the_moved_boxes(small_data_dir, tmp_path):
    from tests.helpers import run_script

    model_dir = str(tmp_path / "regression")
    flags = [f for f in FLAGS if not f.startswith("--epochs")]
    proc = run_script("train.py", f"--data_dir={small_data_dir}", f"--model_dir={model_dir}",
                      *flags, "--epochs=2", "--baseline_box_regression")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "box_deltas_loss" in proc.stdout + proc.stderr
    with h5py.File(os.path.join(model_dir, "baseline", "final.weights.h5")) as f:
        kernels = []
        f.visititems(lambda name, obj: kernels.append(obj[()]) if (
            "box" in name and isinstance(obj, h5py.Dataset) and obj.ndim == 2) else None)
    assert kernels and np.abs(kernels[0]).max() > 0  # trained away from its zero start
    out = str(tmp_path / "eval")
    proc = run_script("evaluate.py", f"--model_dir={model_dir}", f"--data_dir={small_data_dir}",
                      "--split=validation", "--max_images=16", "--num_sheets=0",
                      f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(out, "detections_coco.json")) as f:
        boxes = np.array([d["bbox"] for d in json.load(f)])
    # Moved windows: no longer the grid's squares.
    assert len(boxes) and np.abs(boxes[:, 2] - boxes[:, 3]).max() > 0.5
