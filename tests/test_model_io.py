"""decompnet_tf.model_io: which weights a model_dir gives, and clear errors for what it cannot."""

import shutil

import numpy as np
import pytest

from decompnet_tf.config import Config, TrainConfig
from decompnet_tf.model_io import (
    CONFIG_FILE,
    DamagedCheckpointError,
    final_weights,
    load_trained,
)


def test_load_the_last_or_a_chosen_stage(trained_run, tmp_path):
    last, config = load_trained(trained_run)
    after_one, _ = load_trained(trained_run, min_stage=1, stage=1)
    # Stage 2 trained the instance network only: same category network, other cell.
    for a, b in zip(last.category_net.get_weights(), after_one.category_net.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in
               zip(last.cell.get_weights(), after_one.cell.get_weights()))
    assert config.train.stages == (1, 2)
    with pytest.raises(ValueError, match="only stage 1"):
        load_trained(trained_run, stage=1)  # Detection needs stage 2.
    with pytest.raises(FileNotFoundError, match="stage 3 has not finished"):
        load_trained(trained_run, stage=3)


def test_a_damaged_weights_file_names_the_fix(trained_run, tmp_path):
    copy = str(shutil.copytree(trained_run, tmp_path / "run"))
    path = final_weights(copy, 2)
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DamagedCheckpointError, match="Rerun train.py with the same"):
        load_trained(copy)


def test_a_baseline_dir_is_not_a_decompnet(tmp_path):
    config = Config(kind="baseline", train=TrainConfig(model_dir=str(tmp_path)))
    (tmp_path / CONFIG_FILE).write_text(config.to_json())
    with pytest.raises(ValueError, match="holds the sliding-window baseline"):
        load_trained(str(tmp_path))
