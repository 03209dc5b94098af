"""Frozen configuration dataclasses. Entry scripts turn their flags into these once and pass
them down; `Config.to_json` / `from_json` store them beside a trained model."""

from __future__ import annotations

import dataclasses
import json

from decompnet_tf.data.decomp_mnist import DataConfig


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """DecompNet's constructor arguments (see decompnet_tf.models.decompnet)."""

    num_classes: int = 3
    steps: int = 11
    image_size: tuple[int, int] = (100, 100)
    full_resolution: bool = False
    category_skips: bool = False
    instance_units: int = 2048
    instance_filters: int = 32
    instance_skips: bool = False
    instance_decoder_norm: bool = False
    instance_activation: str = "sigmoid"
    instance_recurrence: str = "rnn"
    stop_head: bool = False
    instance_gated: bool = False
    box_hidden: int = 4096
    box_dropout: float = 0.5
    segmentation_delta: float = 0.1
    backbone: str = "mnist"
    backbone_weights: str = ""
    instance_pool: int = 1


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss settings (sections 2.1-2.3, Appendix B).

    category_p / instance_p: the p of D_p (eq. 2) in the category and instance losses.
    lam, gamma: weights of the matched-instance and summed-map terms; warmup_weight is their
    value during the first epoch of a stage (Appendix B: 0.3, then 1.0). eta: box-term weight.
    instance_loss: "l2" (eq. 2) or "bce" (section 5's pixel-wise classification loss).
    size_weighting: weigh matched instances inversely to their area (section 5).
    stop_weight: weight of the stop head's cross-entropy (used with ModelConfig.stop_head).
    """

    category_p: float = 0.1
    instance_p: float = 0.1
    lam: float = 1.0
    gamma: float = 1.0
    warmup_weight: float = 0.3
    eta: float = 1.0
    instance_loss: str = "l2"
    size_weighting: bool = False
    stop_weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training schedule.

    stages: which of the paper's stages to run, in order (1: category net alone; 2: instance
      net and box regressor, category net frozen; 3: everything end to end).
    epochs: epochs per stage, aligned with `stages`.
    optimizer: "sgd" (momentum) or "adam"; learning_rates: one per stage.
    lr_decay: multiply the learning rate by this after every epoch (1.0: constant).
    checkpoint_steps: also checkpoint every N steps (0: only at epoch ends).
    init_category_from: a model_dir whose trained category network (stage 1) this run starts
      from, so that several instance-network variants share one stage 1 (use stages (2,)).
    """

    model_dir: str = "runs/default"
    stages: tuple[int, ...] = (1, 2)
    epochs: tuple[int, ...] = (1, 1)
    optimizer: str = "sgd"
    learning_rates: tuple[float, ...] = (0.01, 0.01)
    momentum: float = 0.9
    lr_decay: float = 1.0
    clipnorm: float = 10.0
    checkpoint_steps: int = 0
    init_category_from: str = ""
    strategy: str = "default"
    tpu: str = ""
    seed: int = 0
    verbose: int = 1


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """The sliding-window CNN baseline of section 3.1 (see decompnet_tf.models.baseline).

    min_size / max_size: the known range of object sizes in px (the paper's "very strong
    prior"); decomp_mnist's objects span about 10-56 px. step: window stride (3 or 5 px).
    """

    patch_size: int = 32
    positives_per_object: int = 2
    negatives_per_image: int = 8
    min_size: float = 10.0
    max_size: float = 56.0
    step: int = 5
    nms_iou: float = 0.3


@dataclasses.dataclass(frozen=True)
class Config:
    kind: str = "decompnet"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)

    def __post_init__(self):
        if self.loss.instance_loss == "bce" and self.model.instance_activation != "sigmoid":
            raise ValueError(
                "instance_loss='bce' needs probabilities: set instance_activation='sigmoid' "
                f"(got {self.model.instance_activation!r})")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        raw = json.loads(text)

        def build(kind, values):
            fields = {f.name: f for f in dataclasses.fields(kind)}
            unknown = set(values) - set(fields)
            if unknown:
                raise ValueError(f"unknown {kind.__name__} fields in config: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(raw.get("kind", "decompnet"), build(ModelConfig, raw.get("model", {})),
                   build(LossConfig, raw.get("loss", {})), build(DataConfig, raw.get("data", {})),
                   build(TrainConfig, raw.get("train", {})),
                   build(BaselineConfig, raw.get("baseline", {})))
