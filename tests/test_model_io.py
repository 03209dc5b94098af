"""decompnet_tf.model_io: which weights a model_dir gives, and clear errors for what it cannot."""

import shutil

import numpy as np
import pytest

from decompnet_tf.config import Config, TrainConfig
from decompnet_tf.model_io import CONFIG_FILE, DamagedCheckpointError, Run


def test_load_the_last_or_a_chosen_stage(trained_run, tmp_path):
    run = Run.open(trained_run)
    last, config = run.load_net(), run.config
    after_one = run.load_net(min_stage=1, stage=1)
    # Stage 2 trained the instance network only: same category network, other cell.
    for a, b in zip(last.category_net.get_weights(), after_one.category_net.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in
               zip(last.cell.get_weights(), after_one.cell.get_weights()))
    assert config.train.stages == (1, 2)
    with pytest.raises(ValueError, match="only stage 1"):
        run.load_net(stage=1)  # Detection needs stage 2.
    with pytest.raises(FileNotFoundError, match="stage 3 has not finished"):
        run.load_net(stage=3)


def test_a_damaged_weights_file_names_the_fix(trained_run, tmp_path):
    copy = str(shutil.copytree(trained_run, tmp_path / "run"))
    path = Run.open(copy).final_weights(2)
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DamagedCheckpointError, match="Rerun train.py with the same"):
        Run.open(copy).load_net()


def test_a_baseline_dir_is_not_a_decompnet(tmp_path):
    config = Config(kind="baseline", train=TrainConfig(model_dir=str(tmp_path)))
    (tmp_path / CONFIG_FILE).write_text(config.to_json())
    with pytest.raises(ValueError, match="holds the sliding-window baseline"):
        Run.open(str(tmp_path)).load_net()


def _python(code: str):
    """Runs `code` in a fresh Python at the repository root (ram:// lives in one process, and
    the entry scripts' flags are defined once per process)."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=600)


def test_a_rerun_on_ram_keeps_the_stored_inference_settings():
    """train.py reads a rerun's stored inference settings through tf.io.gfile, so a model dir
    on a remote filesystem (ram:// here, as gs://) keeps them unless a flag is given."""
    done = _python("""
import sys
import tensorflow as tf
from absl import flags
from decompnet_tf.config import Config, InferenceConfig, TrainConfig
from decompnet_tf.model_io import Run
import train
stored = InferenceConfig(stop_threshold=0.7, mask_threshold=0.3, box_source="component")
Run.start(Config(train=TrainConfig(model_dir="ram://rerun/run"), inference=stored))
flags.FLAGS(["train.py", "--model_dir=ram://rerun/run"])
assert train.config_from_flags().inference == stored, train.config_from_flags().inference
flags.FLAGS.unparse_flags()
flags.FLAGS(["train.py", "--model_dir=ram://rerun/run", "--stop_threshold=0.2"])
assert train.config_from_flags().inference.stop_threshold == 0.2
print("OK")
""")
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]


def test_evaluate_reads_each_config_json_once(trained_run, tmp_path):
    """evaluate.py --compare of two model dirs opens each config.json once."""
    done = _python(f"""
import tensorflow as tf
opened = []
real = tf.io.gfile.GFile
class Counting(real):
    def __init__(self, name, mode="r"):
        if str(name).endswith("config.json") and "r" in mode:
            opened.append(str(name))
        super().__init__(name, mode)
tf.io.gfile.GFile = Counting
import evaluate
from absl import flags
flags.FLAGS(["evaluate.py", "--compare={trained_run},{trained_run}", "--split=validation",
             "--max_images=4", "--num_sheets=0", "--output_dir={tmp_path / 'out'}"])
evaluate.main()
print("OPENED", len(opened), sorted(set(opened)))
""")
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("OPENED"))
    assert line.split()[1] == "2", line  # The same dir compared with itself: two rows, two reads.
