"""model_dir, evaluation output and export_dir on a filesystem that is not local: TensorFlow's
in-memory ram://, which tf.io.gfile handles as it does gs:// (one process sees it). Training
(two stages), a rerun that skips them, evaluation and export all write there, and nothing lands
in the working directory (os.makedirs would make a local folder named 'ram:')."""

import os

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.config import Config, DataConfig, InferenceConfig, ModelConfig, TrainConfig


@pytest.mark.slow(30)  # seconds on 2 cores (19 measured; 40 beside other jobs)
def test_train_resume_evaluate_export_on_ram_filesystem(small_data_dir, tmp_path,
                                                          monkeypatch):
    from decompnet_tf.detectors import DetectorSpec, load_detector
    from decompnet_tf.detectors.exported import run_tflite
    from decompnet_tf.engine.loop import run_training
    from decompnet_tf.eval import runner
    from decompnet_tf.export.saved_model import (
        DetectorModule,
        export_saved_model,
        export_tflite,
    )
    from decompnet_tf.model_io import Run

    monkeypatch.chdir(tmp_path)
    model_dir = f"ram://{tmp_path.name}/run"
    config = Config(
        model=ModelConfig(steps=3, instance_units=16, instance_filters=4, box_hidden=16),
        data=DataConfig(dataset="decomp_mnist/small", data_dir=small_data_dir, batch_size=8,
                        train_examples=32, validation_examples=100),
        train=TrainConfig(model_dir=model_dir, stages=(1, 2), epochs=(1, 1),
                          learning_rates=(0.01, 0.01), verbose=0))
    first = []
    run_training(config, log=first.append, validation_steps=2)
    exists = tf.io.gfile.exists
    for stage in (1, 2):
        assert exists(Run.open(model_dir).final_weights(stage))
        for name in ("backup/latest.weights.h5", "backup/training_metadata.json",
                     "history.json"):
            assert exists(f"{model_dir}/stage{stage}/{name}"), name
        assert tf.io.gfile.glob(f"{model_dir}/logs/stage{stage}/train/events.out.tfevents.*")
        assert tf.io.gfile.glob(f"{model_dir}/logs/stage{stage}/maps/events.out.tfevents.*")
    assert exists(f"{model_dir}/config.json") and exists(f"{model_dir}/model.keras")

    again = []
    run_training(config, log=again.append, validation_steps=2)  # Finished stages: skipped.
    assert [line for line in again if "finished earlier" in line] == [
        f"stage {s}: finished earlier, weights loaded from {model_dir}/stage{s}" for s in (1, 2)]
    assert not any("epoch(s)" in line for line in again), again

    run = Run.open(model_dir)
    detector, builder = load_detector(run, DetectorSpec())
    out_dir = f"{model_dir}/eval_validation"
    m = runner.evaluate_split(detector, builder, "validation", out_dir, batch_size=4,
                              max_images=8, num_sheets=1,
                              validation_examples=run.config.data.validation_examples)
    assert m["speed"]["images"] == 8
    for name in ("metrics.json", "groundtruth_coco.json", "detections_coco.json",
                 "segmentation_results_coco.json", "pr_detection.png", "pr_segmentation.png",
                 "sheet_detection_0.png", "sheet_segmentation_0.png"):
        assert exists(f"{out_dir}/{name}"), name
    with tf.io.gfile.GFile(f"{out_dir}/pr_detection.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    net = Run.open(model_dir).load_net()
    module = DetectorModule(net, InferenceConfig())
    export_dir = f"ram://{tmp_path.name}/exported"
    assert export_saved_model(module, export_dir) == f"{export_dir}/1"
    assert export_saved_model(module, export_dir) == f"{export_dir}/2"  # The next version.
    assert exists(f"{export_dir}/1/saved_model.pb")
    tflite = f"{export_dir}/model.tflite"
    assert export_tflite(module, tflite) > 0
    image = np.random.default_rng(0).random((1, *net.image_size, 1), dtype=np.float32)
    want = module.tflite_outputs(tf.constant(image))
    got = run_tflite(tflite, image)  # Read back from ram://.
    np.testing.assert_allclose(got["detection_scores"], want[2].numpy(), atol=1e-4)

    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)  # No local 'ram:' folder.
