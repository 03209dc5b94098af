"""VGGCategoryNet (Appendix A): shapes, config, the offline weight rules, and DecompNet on RGB."""

import os
import warnings

import keras
import numpy as np
import pytest

from decompnet_tf.config import ModelConfig
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.models.vgg_category_net import (
    VGG16_NOTOP,
    BackboneWeightsWarning,
    VGGCategoryNet,
    resolve_backbone_weights,
)


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


def test_weights_from_the_keras_cache_or_a_path_else_random_with_a_warning(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.warns(BackboneWeightsWarning, match="random weights"):
        assert resolve_backbone_weights("imagenet") is None
    assert resolve_backbone_weights("none") is None
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_backbone_weights(str(tmp_path / "missing.h5"))
    # A file in the cache (the legacy .h5 layout keras.applications downloads) is loaded.
    os.makedirs(tmp_path / "models")
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    source.save(str(tmp_path / "models" / VGG16_NOTOP))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackboneWeightsWarning)
        net = VGGCategoryNet(backbone_weights="imagenet")
        net.build((None, 64, 64, 3))
    loaded = net.backbone.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), loaded))


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
