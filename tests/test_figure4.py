"""experiments/figure4.py: every run's PR curves in one figure, from stored evaluations."""

import dataclasses
import json

from tests.helpers import run_script


def _evaluation(tmp_path, name, num_classes, data_dir):
    from decompnet_tf.config import Config, DataConfig, ModelConfig, TrainConfig
    from decompnet_tf.model_io import Run

    model_dir = tmp_path / name
    config = dataclasses.replace(
        Config(), data=DataConfig(dataset="decomp_mnist/small", data_dir=data_dir),
        model=ModelConfig(num_classes=num_classes), train=TrainConfig(model_dir=str(model_dir)))
    Run.start(config)
    det = {str(k): {"recall": [0.0, 0.5, 0.9], "precision": [1.0, 0.9, 0.4], "ap_voc": 0.6}
           for k in range(num_classes)}
    folder = model_dir / "eval_test"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(
        {"detection": {"iou_0.5": det}, "model": {"model_dir": str(model_dir)}}))
    return folder


def test_draws_every_run_and_refuses_runs_of_other_classes(small_data_dir, tmp_path):
    a = _evaluation(tmp_path / "quick", "seed0", 3, small_data_dir)
    b = _evaluation(tmp_path / "base", "seed0", 3, small_data_dir)
    out = tmp_path / "fig" / "pr.png"
    done = run_script("experiments/figure4.py", f"--out={out}", str(a), f"baseline={b}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 runs drawn" in done.stdout and out.read_bytes()[:4] == b"\x89PNG"
    other = _evaluation(tmp_path / "two", "seed0", 2, small_data_dir)
    bad = run_script("experiments/figure4.py", f"--out={out}", str(a), str(other))
    assert bad.returncode != 0 and "has classes" in bad.stderr
