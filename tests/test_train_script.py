"""train.py end to end on decomp_mnist/small: a killed run resumes from its checkpoint."""

import json
import os
import subprocess
import sys

import h5py
import pytest

from tests.helpers import ROOT, TINY_FLAGS, kill_after_first_epoch, run_script

# Stage 1 only, 3 epochs of 20 steps: long enough to be killed after the first.
KILL_FLAGS = [*TINY_FLAGS, "--train_examples=320", "--batch_size=16", "--stages=1",
              "--epochs=3", "--learning_rates=0.01", "--lr_decay=0.5"]


@pytest.fixture(scope="module")
def data_dir(small_data_dir):
    return small_data_dir


def _cmd(data_dir, model_dir, extra=()):
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", *KILL_FLAGS, *extra]


def _iterations(model_dir):
    with h5py.File(os.path.join(model_dir, "stage1", "backup", "latest.weights.h5")) as f:
        return int(f["optimizer/vars/0"][()])


@pytest.mark.slow(40)  # seconds with -n 2 on 2 cores
def test_killed_run_resumes_from_checkpoint(data_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    meta = os.path.join(model_dir, "stage1", "backup", "training_metadata.json")
    kill_after_first_epoch(_cmd(data_dir, model_dir), meta)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    assert not os.path.isfile(os.path.join(model_dir, "stage1", "final.weights.h5"))
    resumed = subprocess.run(_cmd(data_dir, model_dir), capture_output=True, text=True,
                             env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    log = resumed.stdout + resumed.stderr
    assert "Epoch 1/3" not in log and "Epoch 2/3" in log and "Epoch 3/3" in log
    # 320 images / 16 = 20 steps per epoch; the restored optimizer counted the first epoch's.
    assert _iterations(model_dir) == 60
    # The rate decays per epoch of the stage, the resumed epochs' as an uninterrupted run's.
    with open(os.path.join(model_dir, "stage1", "history.json")) as f:
        rates = json.load(f)["learning_rate"]
    assert rates == pytest.approx([0.01 * 0.5, 0.01 * 0.25], rel=1e-6)
    assert os.path.isfile(os.path.join(model_dir, "stage1", "final.weights.h5"))
    # A finished run is not trained again.
    again = subprocess.run(_cmd(data_dir, model_dir), capture_output=True, text=True, env=env,
                           timeout=300)
    assert "stage 1: finished earlier" in again.stdout + again.stderr


def _copy(run, tmp_path, name="copy"):
    import shutil

    return str(shutil.copytree(run, tmp_path / name))


def _rerun(model_dir, *extra):
    """train.py again with the flags of the shared `trained_run` (conftest.py)."""
    from decompnet_tf.model_io import Run

    data_dir = Run.open(model_dir).config.data.data_dir
    return run_script("train.py", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                      *TINY_FLAGS, "--stages=1,2", "--epochs=1,1", "--learning_rates=0.01,0.01",
                      *extra)


def test_changed_model_flags_are_refused(trained_run, tmp_path):
    model_dir = _copy(trained_run, tmp_path)
    second = _rerun(model_dir, "--instance_units=32")
    assert second.returncode != 0
    assert "holds a run with other model settings" in second.stderr
    assert "Traceback" not in second.stderr
    # The one line naming the devices comes first (decompnet_tf/console.py: device_report).
    first_line = second.stdout.splitlines()[0]
    assert first_line.startswith("devices: ") and first_line.endswith("; 1 replica"), first_line


def test_damaged_final_weights_retrain_that_stage(trained_run, tmp_path):
    from decompnet_tf.model_io import Run

    model_dir = _copy(trained_run, tmp_path)
    weights = os.path.join(model_dir, "stage2", "final.weights.h5")
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[: len(data) // 3])
    done = _rerun(model_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "stage 1: finished earlier" in log
    assert "stage2/final.weights.h5 is damaged; training the stage again" in log
    net = Run.open(model_dir).load_net()  # Readable again.
    assert net.built


def test_init_category_from_shares_stage_one(trained_run, data_dir, tmp_path):
    first, second = trained_run, str(tmp_path / "stage2")
    variant = ["--stages=2", "--epochs=1", "--learning_rates=0.001",
               f"--init_category_from={first}", "--stop_head", "--instance_recurrence=lstm"]
    done = run_script("train.py", f"--data_dir={data_dir}", f"--model_dir={second}",
                      *TINY_FLAGS, *variant)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "category network initialised from" in done.stdout + done.stderr
    # Stage 2 freezes the category network: the variant's equals the source's exactly.
    from decompnet_tf.model_io import Run, build_net

    net = Run.open(second).load_net()
    source = build_net(Run.open(first).config)
    source.load_weights(Run.open(first).final_weights(2))
    for a, b in zip(net.category_net.get_weights(), source.category_net.get_weights()):
        assert (a == b).all()
    assert net.stop_head and net.config.instance_recurrence == "lstm"
    # A source with another category network is refused with a clear message.
    bad = run_script("train.py", f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'bad'}",
                     *TINY_FLAGS, *variant, "--category_skips")
    assert bad.returncode != 0 and "its category network differs" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_zero_epochs_save_the_untrained_stage(data_dir, tmp_path):
    """--epochs=...,0 is an untrained reference for a stage (tests/test_quick_config.py's
    floors were measured against one): the stage's weights are written, not a crash."""
    from decompnet_tf.model_io import Run

    model_dir = str(tmp_path / "zero")
    done = run_script("train.py", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                      *TINY_FLAGS, "--stages=1,2", "--epochs=0,0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(os.path.isfile(Run.open(model_dir).final_weights(s)) for s in (1, 2))
    net = Run.open(model_dir).load_net()
    assert net.built


def test_rerun_keeps_stored_inference_settings_unless_their_flags_are_given(trained_run,
                                                                            tmp_path):
    """train.py stores its inference flags in config.json; a rerun on the finished run keeps
    what calibrate_thresholds.py --write stored there, but for the flags it is given."""
    from decompnet_tf.config import InferenceConfig
    from decompnet_tf.model_io import Run

    assert Run.open(trained_run).config.inference == InferenceConfig()  # Trained with the defaults.
    model_dir = _copy(trained_run, tmp_path)
    Run.open(model_dir).with_inference(InferenceConfig(stop_threshold=0.7, mask_threshold=0.3))
    done = _rerun(model_dir, "--box_source=component")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stage 2: finished earlier" in done.stdout + done.stderr
    assert Run.open(model_dir).config.inference == InferenceConfig(
        stop_threshold=0.7, mask_threshold=0.3, box_source="component")


@pytest.mark.slow(20)  # seconds with -n 2 on 2 cores
def test_steps_per_epoch_sets_the_epoch_length(data_dir, tmp_path):
    """--steps_per_epoch replaces images / batch (320 / 16 = 20 here) as an epoch's length."""
    done = run_script("train.py", f"--data_dir={data_dir}",
                      f"--model_dir={tmp_path / 'short'}", *KILL_FLAGS, "--epochs=1",
                      "--steps_per_epoch=3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 epoch(s) of 3 steps" in done.stdout + done.stderr
