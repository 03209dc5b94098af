"""A model dir, the unit users carry: `Run` reads its config.json once and names every path in
it; building and loading the networks it holds lives here too, so that evaluation and export
need not import the training engine. Every read and write goes through `tf.io.gfile`.

model_dir/
  config.json                the run's Config, inference settings included
  stage{N}/backup/           stage N's latest checkpoint (weights, optimizer, epoch)
  stage{N}/final.weights.h5  the network after stage N; a rerun skips finished stages
  stage{N}/history.json      stage N's logged metrics per epoch
  logs/stage{N}/, logs/baseline/   TensorBoard
  model.keras                the trained DecompNet after the last stage
  baseline/backup/, baseline/final.weights.h5   the sliding-window baseline's classifier
  eval_{split}/, predictions/      evaluate.py's and predict.py's default outputs
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from decompnet_tf.config import Config, InferenceConfig
from decompnet_tf.models.decompnet import DecompNet

CONFIG_FILE = "config.json"


class DamagedCheckpointError(ValueError):
    """A weights file that cannot be read (cut short by a full disk or an interrupted copy)."""


def build_net(config: Config, pretrained_backbone: bool = True) -> DecompNet:
    """A built DecompNet; `pretrained_backbone=False` skips VGG16's ImageNet file (trained
    weights are loaded next)."""
    net = DecompNet(config.model, pretrained_backbone=pretrained_backbone)
    net.build()
    return net


def build_classifier(config: Config):
    """The baseline's built patch classifier (section 3.1) with the run's settings."""
    from decompnet_tf.models.baseline import PatchClassifier

    net = PatchClassifier(config.model.num_classes, config.baseline.patch_size,
                          config.baseline.box_regression)
    net.build()
    return net


def load_weights(net, path: str, model_dir: str) -> None:
    """`net.load_weights(path)`, raising DamagedCheckpointError for an unreadable file."""
    try:
        net.load_weights(path)
    except OSError as e:
        raise DamagedCheckpointError(
            f"{path} is damaged and cannot be read ({e}): it was cut short or is not a weights "
            f"file. Rerun train.py with the same --model_dir={model_dir}: it retrains that "
            "stage from its last checkpoint.") from None


def _replace(path: str, text: str) -> None:
    """Writes `text` to `path` whole: a crash leaves the old file, and TensorFlow's ram://
    filesystem would append to a file rewritten in place."""
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


@dataclasses.dataclass(frozen=True)
class Run:
    """A model dir and its Config. `Run.open` reads an existing one, `Run.start` writes a new
    run's config.json; the path methods take `root` to name the same file under another folder
    (a worker of multi-worker training writes a copy it then discards)."""

    model_dir: str
    config: Config

    @classmethod
    def open(cls, model_dir: str) -> Run:
        path = os.path.join(model_dir, CONFIG_FILE)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{model_dir} holds no trained model ({CONFIG_FILE} missing); pass the "
                "--model_dir of a train.py run")
        with tf.io.gfile.GFile(path) as f:
            return cls(model_dir, Config.from_json(f.read()))

    @classmethod
    def start(cls, config: Config) -> Run:
        """Writes config.json into `config.train.model_dir`; refuses a dir holding a run with
        other model settings or stages, so that resuming never mixes two runs."""
        run = cls(config.train.model_dir, config)
        tf.io.gfile.makedirs(run.model_dir)
        if tf.io.gfile.exists(run.path(CONFIG_FILE)):
            old = cls.open(run.model_dir).config
            if (old.kind, old.model, old.train.stages) != (config.kind, config.model,
                                                            config.train.stages):
                raise ValueError(
                    f"{run.model_dir} holds a run with other model settings or stages:\n  was "
                    f"{old.model}, stages {old.train.stages}\n  now {config.model}, stages "
                    f"{config.train.stages}\nUse a new --model_dir, or the flags of that run.")
            if old == config:  # A rerun of the same command: nothing to write.
                return run
        _replace(run.path(CONFIG_FILE), config.to_json())
        return run

    def with_inference(self, settings: InferenceConfig) -> Run:
        """The run with `settings` stored as its inference settings (config.json rewritten)."""
        run = dataclasses.replace(self, config=dataclasses.replace(self.config,
                                                                   inference=settings))
        _replace(self.path(CONFIG_FILE), run.config.to_json())
        return run

    def path(self, *parts: str, root: str | None = None) -> str:
        return os.path.join(root or self.model_dir, *parts)

    def stage_dir(self, stage: int, root: str | None = None) -> str:
        return self.path(f"stage{stage}", root=root)

    def final_weights(self, stage: int, root: str | None = None) -> str:
        return self.path(f"stage{stage}", "final.weights.h5", root=root)

    def backup_dir(self, stage: int, root: str | None = None) -> str:
        return self.path(f"stage{stage}", "backup", root=root)

    def history_file(self, stage: int, root: str | None = None) -> str:
        return self.path(f"stage{stage}", "history.json", root=root)

    def logs_dir(self, stage: int | str, root: str | None = None) -> str:
        """TensorBoard's folder of a stage (or "baseline")."""
        return self.path("logs", stage if isinstance(stage, str) else f"stage{stage}", root=root)

    def model_file(self, root: str | None = None) -> str:
        return self.path("model.keras", root=root)

    def classifier_weights(self) -> str:
        return self.path("baseline", "final.weights.h5")

    def classifier_backup(self) -> str:
        return self.path("baseline", "backup")

    def eval_dir(self, split: str, suffix: str = "") -> str:
        return self.path(f"eval_{split}{suffix}")

    def predictions_dir(self) -> str:
        return self.path("predictions")

    def finished_stages(self, stages=None) -> list[int]:
        """The stages of `stages` (default: the run's), in order, whose final weights exist."""
        stages = self.config.train.stages if stages is None else stages
        return [s for s in stages if tf.io.gfile.exists(self.final_weights(s))]

    def class_names(self) -> list[str] | None:
        """The class names by id from the TFDS dataset's info (`dataset_class_names`)."""
        data = self.config.data
        return dataset_class_names(data.dataset, data.data_dir, self.config.model.num_classes)

    def load_net(self, min_stage: int = 2, stage: int | None = None) -> DecompNet:
        """The DecompNet at the last finished stage, or at `stage`, which must be at least
        `min_stage`: 2 for detection (the instance network), 1 where the category network is
        enough."""
        if self.config.kind == "baseline":
            raise ValueError(
                f"{self.model_dir} holds the sliding-window baseline (train.py "
                "--model=baseline), not a decompNet: a patch classifier run over ~1,000 windows "
                "per image with NMS, which is not one network and cannot be exported or loaded "
                "as one. evaluate.py evaluates it; pass a decompNet --model_dir here.")
        done = self.finished_stages()
        if not done:
            raise FileNotFoundError(
                f"{self.model_dir}: no training stage has finished yet (no "
                "stage*/final.weights.h5); finish or resume the train.py run first")
        if stage:
            if stage not in done:
                raise FileNotFoundError(f"{self.model_dir}: stage {stage} has not finished "
                                        f"(finished: {done}); pass one of those, or none for "
                                        "the last")
            done = done[: done.index(stage) + 1]
        if max(done) < min_stage:
            raise ValueError(
                f"{self.model_dir}: only stage {max(done)} (the category network) is trained; "
                "detection needs stage 2 (the instance network)")
        net = build_net(self.config, pretrained_backbone=False)  # Trained weights replace them.
        load_weights(net, self.final_weights(done[-1]), self.model_dir)
        return net

    def load_classifier(self):
        """The trained baseline's patch classifier (train.py --model=baseline)."""
        if not tf.io.gfile.exists(self.classifier_weights()):
            raise FileNotFoundError(f"{self.model_dir}: the baseline classifier is not trained "
                                    "yet; finish or resume its train.py run first")
        net = build_classifier(self.config)
        load_weights(net, self.classifier_weights(), self.model_dir)
        return net


def dataset_class_names(dataset: str, data_dir: str | None, num_classes: int) -> list[str] | None:
    """The class names by id from the TFDS dataset's info (no data prepared); None when the
    builder is unknown or disagrees with the model's class count."""
    from decompnet_tf.data.builders import open_builder

    try:
        builder = open_builder(dataset, data_dir, prepare=False)
        names = [str(n) for n in builder.info.features["objects"]["label"].names]
    except Exception:  # An unregistered or unreadable dataset: the ids stand in for names.
        return None
    return names if len(names) == num_classes else None
