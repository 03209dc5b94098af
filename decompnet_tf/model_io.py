"""Building a DecompNet from a Config and loading a trained one from its model_dir (shared, so
that evaluation and export need not import the training engine)."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from decompnet_tf.config import Config, InferenceConfig
from decompnet_tf.models.decompnet import DecompNet

CONFIG_FILE = "config.json"


def build_net(config: Config, pretrained_backbone: bool = True) -> DecompNet:
    """A built DecompNet; `pretrained_backbone=False` skips VGG16's ImageNet file (trained
    weights are loaded next)."""
    net = DecompNet(config.model, pretrained_backbone=pretrained_backbone)
    net.build()
    return net


def write_config(config: Config) -> None:
    """Writes config.json into model_dir (any tf.io.gfile path); refuses one holding a run with
    other model settings or stages, so that resuming never mixes two runs."""
    model_dir = config.train.model_dir
    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, CONFIG_FILE)
    text = config.to_json()
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            old_text = f.read()
        old = Config.from_json(old_text)
        if (old.kind, old.model, old.train.stages) != (config.kind, config.model,
                                                        config.train.stages):
            raise ValueError(
                f"{model_dir} holds a run with other model settings or stages:\n  was "
                f"{old.model}, stages {old.train.stages}\n  now {config.model}, stages "
                f"{config.train.stages}\nUse a new --model_dir, or the flags of that run.")
        if old_text == text:  # A rerun of the same command: nothing to write.
            return
        # Replaced, not rewritten: TensorFlow's ram:// filesystem appends to a rewritten file.
        tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)


def class_names(config: Config) -> list[str] | None:
    """The class names by id from the TFDS dataset's info (no data prepared); None when the
    builder is unknown or disagrees with the model's class count."""
    from decompnet_tf.data.builders import open_builder

    try:
        builder = open_builder(config.data.dataset, config.data.data_dir, prepare=False)
        names = [str(n) for n in builder.info.features["objects"]["label"].names]
    except Exception:  # An unregistered or unreadable dataset: the ids stand in for names.
        return None
    return names if len(names) == config.model.num_classes else None


def build_classifier(config: Config):
    """The baseline's built patch classifier (section 3.1) with the run's settings."""
    from decompnet_tf.models.baseline import PatchClassifier

    net = PatchClassifier(config.model.num_classes, config.baseline.patch_size)
    net.build()
    return net


def classifier_weights(model_dir: str) -> str:
    """Where the baseline's trained patch classifier is saved."""
    return os.path.join(model_dir, "baseline", "final.weights.h5")


def load_classifier(model_dir: str):
    """(patch classifier, Config) of a trained baseline run (train.py --model=baseline)."""
    config = read_config(model_dir)
    if not tf.io.gfile.exists(classifier_weights(model_dir)):
        raise FileNotFoundError(f"{model_dir}: the baseline classifier is not trained yet; "
                                "finish or resume its train.py run first")
    net = build_classifier(config)
    load_weights(net, classifier_weights(model_dir), model_dir)
    return net, config


def final_weights(model_dir: str, stage: int) -> str:
    """Where the network is saved after `stage`."""
    return os.path.join(model_dir, f"stage{stage}", "final.weights.h5")


def finished_stages(model_dir: str, stages: tuple[int, ...] | list[int]) -> list[int]:
    """The stages of `stages`, in order, whose final weights model_dir holds."""
    return [s for s in stages if tf.io.gfile.exists(final_weights(model_dir, s))]


class DamagedCheckpointError(ValueError):
    """A weights file that cannot be read (cut short by a full disk or an interrupted copy)."""


def load_weights(net, path: str, model_dir: str) -> None:
    """`net.load_weights(path)`, raising DamagedCheckpointError for an unreadable file."""
    try:
        net.load_weights(path)
    except OSError as e:
        raise DamagedCheckpointError(
            f"{path} is damaged and cannot be read ({e}): it was cut short or is not a weights "
            f"file. Rerun train.py with the same --model_dir={model_dir}: it retrains that "
            "stage from its last checkpoint.") from None


def read_config(model_dir: str) -> Config:
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{model_dir} holds no trained model ({CONFIG_FILE} missing); pass the --model_dir "
            "of a train.py run")
    with tf.io.gfile.GFile(path) as f:
        return Config.from_json(f.read())


def write_inference(model_dir: str, settings: InferenceConfig) -> None:
    """Replaces the inference settings in model_dir's config.json; the rest stays as it is."""
    path = os.path.join(model_dir, CONFIG_FILE)
    config = dataclasses.replace(read_config(model_dir), inference=settings)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:  # A crash leaves the old file whole.
        f.write(config.to_json())
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def load_trained(model_dir: str, min_stage: int = 2,
                 stage: int | None = None) -> tuple[DecompNet, Config]:
    """(DecompNet, Config) of a training run, at its last finished stage or at `stage`.

    That stage must be at least `min_stage`: 2 for detection (the instance network), 1 where the
    category network is enough.
    """
    config = read_config(model_dir)
    if config.kind == "baseline":
        raise ValueError(
            f"{model_dir} holds the sliding-window baseline (train.py --model=baseline), not a "
            "decompNet: a patch classifier run over ~1,000 windows per image with NMS, which "
            "is not one network and cannot be exported or loaded as one. evaluate.py evaluates "
            "it; pass a decompNet --model_dir here.")
    done = finished_stages(model_dir, config.train.stages)
    if not done:
        raise FileNotFoundError(
            f"{model_dir}: no training stage has finished yet (no stage*/final.weights.h5); "
            "finish or resume the train.py run first")
    if stage:
        if stage not in done:
            raise FileNotFoundError(f"{model_dir}: stage {stage} has not finished (finished: "
                                    f"{done}); pass one of those, or none for the last")
        done = done[: done.index(stage) + 1]
    if max(done) < min_stage:
        raise ValueError(
            f"{model_dir}: only stage {max(done)} (the category network) is trained; detection "
            "needs stage 2 (the instance network)")
    net = build_net(config, pretrained_backbone=False)  # The trained weights replace them.
    load_weights(net, final_weights(model_dir, done[-1]), model_dir)
    return net, config
