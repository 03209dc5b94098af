"""train.py and evaluate.py on a KITTI-format fixture: VGG16 backbone, all three stages, and
the official protocol's metrics file, PR plot and devkit result files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from decompnet_tf.data import kitti_labels as kp
from tests.test_kitti import LABELS, _build, score_result_files, write_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# configs/kitti.flags itself, shrunk to the fixture (later flags override the file's).
FLAGS = ["--flagfile=" + os.path.join(ROOT, "configs", "kitti.flags"),
         "--dataset=decomp_kitti/fixture", "--backbone_weights=none", "--image_size=64,192",
         "--steps=3", "--max_per_class=5", "--instance_pool=2", "--instance_units=16",
         "--instance_filters=4", "--box_hidden=16", "--batch_size=2", "--epochs=1,1,1",
         "--checkpoint_steps=0", "--validation_examples=1", "--verbose=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kitti")
    manual = tmp / "manual"
    manual.mkdir()
    _build(tmp, manual, write_tree(str(manual)))
    data_dir, model_dir = str(tmp / "data"), str(tmp / "run")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *FLAGS,
                           f"--data_dir={data_dir}", f"--model_dir={model_dir}"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return data_dir, model_dir, env


def test_vgg16_backbone_is_frozen_until_stage_three(trained):
    from decompnet_tf.model_io import Run, build_net

    _, model_dir, _ = trained
    config = Run.open(model_dir).config
    nets = []
    for stage in (1, 2, 3):
        net = build_net(config)
        net.load_weights(Run.open(model_dir).final_weights(stage))
        nets.append(net)
    backbone = [n.category_net.backbone.get_weights() for n in nets]
    decoder = [n.category_net.head.get_weights()[0] for n in nets]
    assert all(np.array_equal(a, b) for a, b in zip(backbone[0], backbone[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(backbone[1], backbone[2]))
    assert np.array_equal(decoder[0], decoder[1])  # Stage 2 freezes the category net.
    cell = [n.cell.get_weights()[0] for n in nets]
    assert not np.array_equal(cell[0], cell[1])


def test_evaluate_writes_kitti_metrics_per_difficulty(trained):
    data_dir, model_dir, env = trained
    done = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"),
                           f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                           "--batch_size=1"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = os.path.join(model_dir, "eval_test")
    m = json.load(open(os.path.join(out, "metrics.json")))
    res = m["kitti_car_iou_0.7"]
    assert list(res) == ["easy", "moderate", "hard"]
    # The val image holds one car, 49 px high (0.00 to 49.00), unoccluded: it counts at every
    # difficulty.
    assert [res[k]["num_gt"] for k in res] == [1, 1, 1]
    for r in res.values():
        assert 0.0 <= r["ap_r40"] <= 1.0 and len(r["precision"]) == 41
    assert m["model"]["split"] == "validation"
    assert os.path.getsize(os.path.join(out, "pr_kitti.png")) > 1000
    # The devkit's result files: one per evaluated image, named by its KITTI id, boxes in the
    # original image's pixels (78 x 236 here), readable by the project's label parser.
    results = os.path.join(out, "kitti_results")
    assert os.listdir(results) == ["000001.txt"]
    path = os.path.join(results, "000001.txt")
    for obj in kp.parse_label_file(open(path).read(), path):
        assert obj.type == "Car" and obj.score is not None and obj.alpha == -10
    # Scored from the files as the devkit would, the detections get metrics.json's AP.
    theirs = score_result_files(results, {"000001": LABELS["000001"]})
    for level, r in res.items():
        assert theirs[level]["num_gt"] == r["num_gt"]
        assert theirs[level]["ap_r40"] == pytest.approx(r["ap_r40"], abs=1e-9)
        assert theirs[level]["ap_r11"] == pytest.approx(r["ap_r11"], abs=1e-9)
