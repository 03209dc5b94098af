"""VGGCategoryNet (Appendix A): shapes, config, the offline weight rules (a missing file stops
training, a trained model loads without it), and DecompNet on RGB."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from decompnet_tf.config import Config, ModelConfig, TrainConfig
from decompnet_tf.model_io import Run, build_net
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.models.vgg_category_net import (
    FETCH_COMMAND,
    VGG16_NOTOP,
    VGGCategoryNet,
    resolve_backbone_weights,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shapes_and_config():
    kwargs = dict(num_classes=2, backbone_weights="none", skips=False, decoder_filters=8)
    net = VGGCategoryNet(**kwargs)
    out = net(np.random.default_rng(0).random((1, 64, 96, 3)).astype("float32"))
    assert tuple(out["category_maps"].shape) == (1, 32, 48, 2)
    config = net.get_config()
    for key, value in kwargs.items():
        assert config[key] == value, key
    with pytest.raises(ValueError, match="multiples of 32"):
        VGGCategoryNet(backbone_weights="none").build((None, 70, 96, 3))


def test_weights_from_the_keras_cache_or_a_path_and_a_missing_file_is_an_error(
        tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = str(tmp_path / "models" / VGG16_NOTOP)
    # Absent: an error naming the file and the command that writes it, never random weights.
    with pytest.raises(FileNotFoundError) as e:
        resolve_backbone_weights("imagenet")
    assert cache in str(e.value) and FETCH_COMMAND in str(e.value)
    assert "include_top=False" in FETCH_COMMAND and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="missing.h5 does not exist"):
        resolve_backbone_weights(str(tmp_path / "missing.h5"))
    with pytest.raises(FileNotFoundError, match=VGG16_NOTOP):
        VGGCategoryNet(backbone_weights="imagenet").build((None, 64, 64, 3))
    assert resolve_backbone_weights("none") is None
    assert resolve_backbone_weights("") is None
    # A file in the cache (the legacy .h5 layout keras.applications downloads) is loaded, and
    # so is one at an explicit path.
    os.makedirs(tmp_path / "models")
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    source.save(cache)
    own = str(tmp_path / "own.h5")
    source.save(own)
    assert resolve_backbone_weights("imagenet") == cache
    assert resolve_backbone_weights(own) == own
    for spec in ("imagenet", own):
        net = VGGCategoryNet(backbone_weights=spec)
        net.build((None, 64, 64, 3))
        loaded = net.backbone.get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), loaded)), spec
    # "none": random weights (not the file's), no error.
    net = VGGCategoryNet(backbone_weights="none")
    net.build((None, 64, 64, 3))
    assert not np.array_equal(net.backbone.get_weights()[0], source.get_weights()[0])


def _vgg_config(model_dir):
    return Config(model=ModelConfig(num_classes=1, steps=2, image_size=(64, 64),
                                    backbone="vgg16", backbone_weights="imagenet",
                                    instance_pool=2, instance_units=8, instance_filters=4,
                                    box_hidden=8),
                  train=TrainConfig(model_dir=model_dir, stages=(1, 2), epochs=(1, 1)))


def test_a_trained_vgg16_model_loads_without_the_imagenet_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    model_dir = str(tmp_path / "run")
    config = _vgg_config(model_dir)
    # A trained run: its config.json (backbone_weights='imagenet') and stage weights.
    Run.start(config)
    trained = build_net(config, pretrained_backbone=False)
    for stage in (1, 2):
        os.makedirs(os.path.dirname(Run.open(model_dir).final_weights(stage)))
        trained.save_weights(Run.open(model_dir).final_weights(stage))
    images = np.random.default_rng(0).random((1, 64, 64, 3)).astype("float32")
    expected = trained(images)["category_maps"]
    run = Run.open(model_dir)
    net, loaded_config = run.load_net(), run.config
    assert loaded_config.model.backbone_weights == "imagenet"
    np.testing.assert_allclose(net(images)["category_maps"], expected, atol=1e-5)
    # So does the saved model.keras (keras.models.load_model).
    trained.save(str(tmp_path / "model.keras"))
    again = keras.models.load_model(str(tmp_path / "model.keras"))
    np.testing.assert_allclose(again(images)["category_maps"], expected, atol=1e-5)
    # A fresh network for training does need it.
    with pytest.raises(FileNotFoundError, match=VGG16_NOTOP):
        build_net(config)


def test_train_stops_before_training_when_the_imagenet_file_is_missing(tmp_path):
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    model_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--backbone=vgg16",
         "--backbone_weights=imagenet", "--dataset=decomp_kitti/cars", "--num_classes=1",
         "--image_size=64,64", f"--data_dir={tmp_path / 'data'}", f"--model_dir={model_dir}"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: backbone_weights='imagenet': "), done.stderr[-2000:]
    assert str(tmp_path / "empty" / "models" / VGG16_NOTOP) in last and FETCH_COMMAND in last
    assert not model_dir.exists()  # Stopped before writing anything, let alone training.


def test_decompnet_with_vgg16_takes_rgb_and_pools_the_instance_maps():
    net = DecompNet(ModelConfig(num_classes=1, steps=2, image_size=(64, 128),
                                backbone="vgg16", backbone_weights="none", instance_pool=2,
                                instance_units=8, instance_filters=4, box_hidden=8))
    out = net(np.zeros((1, 64, 128, 3), "float32"))
    assert net.map_size == (32, 64) and net.instance_size == (16, 32)
    assert tuple(out["category_maps"].shape) == (1, 32, 64, 1)
    assert tuple(out["instance_maps"].shape) == (1, 1, 2, 16, 32)
    with pytest.raises(ValueError, match=r"\[batch, 64, 128, 3\] \(RGB"):
        net(np.zeros((1, 64, 128, 1), "float32"))
    config = net.get_config()["config"]
    assert (config["backbone"], config["instance_pool"]) == ("vgg16", 2)
