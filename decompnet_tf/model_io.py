"""Building a DecompNet from a Config and loading a trained one from its model_dir.

Shared by training (which writes model_dir), evaluation and export (which read it), so that
neither of the readers imports the training engine.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

from decompnet_tf.config import Config
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.models.vgg_category_net import BackboneWeightsWarning

CONFIG_FILE = "config.json"


def build_net(config: Config) -> DecompNet:
    """A built DecompNet with the run's model settings."""
    net = DecompNet(**dataclasses.asdict(config.model))
    net.build()
    return net


def final_weights(model_dir: str, stage: int) -> str:
    """Where the network is saved after `stage`."""
    return os.path.join(model_dir, f"stage{stage}", "final.weights.h5")


def read_config(model_dir: str) -> Config:
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model_dir} holds no trained model ({CONFIG_FILE} missing); pass the --model_dir "
            "of a train.py run")
    with open(path) as f:
        return Config.from_json(f.read())


def load_trained(model_dir: str) -> tuple[DecompNet, Config]:
    """The DecompNet of a training run: its config.json and its last finished stage."""
    config = read_config(model_dir)
    done = [s for s in config.train.stages if os.path.isfile(final_weights(model_dir, s))]
    if not done:
        raise FileNotFoundError(
            f"{model_dir}: no training stage has finished yet (no stage*/final.weights.h5); "
            "finish or resume the train.py run first")
    if max(done) < 2:
        raise ValueError(
            f"{model_dir}: only stage {max(done)} (the category network) is trained; detection "
            "needs stage 2 (the instance network)")
    with warnings.catch_warnings():
        # The trained weights replace the backbone's initial ones: no warning about those.
        warnings.simplefilter("ignore", BackboneWeightsWarning)
        net = build_net(config)
    net.load_weights(final_weights(model_dir, done[-1]))
    return net, config
