"""Frozen configuration dataclasses, at the bottom of the import graph (standard library only).

Each field is written once, here: default, help text, bounds and choices (`setting`).
`config_flags` derives the entry scripts' absl flags from the fields; `Config.to_json` /
`from_json` store them beside a trained model.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def setting(default: Any, help: str, *, flag: str | None = None, lower: float | None = None,
            upper: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with what its command-line flag needs.

    Choices and bounds are checked when the flags are parsed and, by `check_settings`, when the
    dataclass is built.

    Args:
      default: the default value (tuples become list flags).
      help: the flag's help text.
      flag: the flag's name when it differs from the field's name.
      lower, upper: inclusive bounds (of each element, for a tuple).
      choices: the allowed strings (an enum flag).
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "flag": flag, "lower": lower, "upper": upper, "choices": choices})


def check_settings(settings: Any) -> None:
    """Raises ValueError naming the field whose value is outside its `setting()` choices or bounds.

    The flags check the same metadata when parsed; this covers dataclasses built in Python or
    read from a config.json.
    """
    for field in dataclasses.fields(settings):
        meta, value = field.metadata, getattr(settings, field.name)
        choices, lower, upper = meta.get("choices"), meta.get("lower"), meta.get("upper")
        name = f"{type(settings).__name__}.{field.name}"
        if choices and value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        for v in value if isinstance(value, tuple) else (value,):
            if lower is not None and v < lower:
                raise ValueError(f"{name} must be >= {lower}, got {value!r}")
            if upper is not None and v > upper:
                raise ValueError(f"{name} must be <= {upper}, got {value!r}")


class Settings:
    """Base of the settings dataclasses: checks the values against `setting()` metadata.

    A subclass's own `__post_init__` calls this one first.
    """

    def __post_init__(self):
        check_settings(self)


# The allowed values of the string settings, imported where the values are acted on.
BACKBONES = ("mnist", "vgg16")
RECURRENCES = ("rnn", "lstm", "convlstm")
DECODERS = ("deconv", "dynamic")
STOP_INPUTS = ("state", "state_residual", "state_residual_centers")


@dataclasses.dataclass(frozen=True)
class ModelConfig(Settings):
    """DecompNet's constructor arguments (see decompnet_tf.models.decompnet)."""

    num_classes: int = setting(3, "Categories (decomp_mnist: 3, for the digits 3, 6, 9).",
                               lower=1)
    steps: int = setting(11, "Recurrent steps T per category (max objects + the stop map).",
                         lower=1)
    image_size: tuple[int, ...] = setting((100, 100), "Input height,width.", lower=1)
    full_resolution: bool = setting(False, "Maps at full input size ('decomp full').")
    category_skips: bool = setting(
        False, "Encoder-decoder skips in CategoryNet (or the FCN skips from VGG16's pooling "
        "layers with --backbone=vgg16).")
    center_head: bool = setting(
        False, "A per-class heatmap of box centres beside the category maps (CenterNet; not in "
        "the paper): touching digits that merge in a map stay separate peaks.")
    instance_units: int = setting(2048, "Units of each fully connected recurrent layer.",
                                  lower=1)
    instance_filters: int = setting(32, "Filters of the InstanceCell's deconvolutions.",
                                    lower=1)
    instance_skips: bool = setting(False, "Encoder-decoder skips inside the InstanceCell.")
    instance_decoder_norm: bool = setting(
        False, "Batch norm in the InstanceCell's decoder (Appendix B; off: see the cell).")
    instance_activation: str = setting(
        "sigmoid", "Output of the instance maps. sigmoid saturates under the L2 loss and can "
        "collapse to all-zero maps; linear does not (maps are clipped to [0, 1] for "
        "detection).", choices=("sigmoid", "linear"))
    instance_recurrence: str = setting(
        "rnn", "Recurrent bottleneck: the paper's fully connected RNN, or section 5's LSTM and "
        "convolutional LSTM.", choices=RECURRENCES)
    stop_head: bool = setting(
        False, "Learned stop signal: a sigmoid on the recurrent state per step, trained with "
        "cross-entropy (not in the paper); replaces the peak threshold.")
    stop_input: str = setting(
        "state", "The stop head reads the step's state; state_residual: also the pixel sums of "
        "the map left and of the step's map; state_residual_centers: also the strongest centre "
        "under each (not in the paper).", choices=STOP_INPUTS)
    instance_gated: bool = setting(
        False, "Instance maps as gated selections of the category map: sigmoid(cell output) * "
        "clip(category map, 0, 1) (not in the paper).")
    box_hidden: int = setting(4096, "Hidden units of the box regressor (section 2.3).", lower=1)
    box_dropout: float = setting(0.5, "Dropout rate of the box regressor.", lower=0.0,
                                 upper=1.0)
    box_input: str = setting(
        "map", "What the box regressor reads: each instance map (section 2.3), or 'state': the "
        "step's recurrent state, the query that chose the object (as DETR's box head reads "
        "its queries; not in the paper).", choices=("map", "state"))
    backbone: str = setting(
        "mnist", "Category network: the paper's MNIST network (grayscale) or Appendix A's VGG16 "
        "with deconvolutions (RGB; decomp_kitti).", choices=BACKBONES)
    backbone_weights: str = setting(
        "", "vgg16 only: 'imagenet' (from the Keras cache, never downloaded; an error when "
        "absent), a path to the no-top .h5 file, or 'none' (empty: 'imagenet' "
        "with vgg16).")
    instance_pool: int = setting(
        1, "Average-pool the category maps by this factor before the instance network (KITTI: "
        "4 keeps its recurrent and box layers small).", lower=1)
    instance_decoder: str = setting(
        "deconv", "How a step's state becomes its map: the paper's deconvolutions, or "
        "'dynamic': deconvolutions once per category and a per-pixel network whose weights "
        "each step emits (not in the paper).", choices=DECODERS)
    instance_image: bool = setting(
        False, "Give the instance network the image (at the maps' resolution) beside each "
        "category map, so it can tell strokes from clutter and see where touching digits meet "
        "(not in the paper).")
    instance_centers: bool = setting(
        False, "Give the instance network each category's centre heatmap (--center_head) "
        "beside its map: the peaks say how many digits a merged blob holds (not in the paper; "
        "stage 2 on true maps reads true centres).")
    instance_canvas: bool = setting(
        False, "With --instance_decoder=dynamic: each step also sees the sum of the maps "
        "emitted so far (gradient stopped) (not in the paper; after Ren & Zemel 2017).")
    instance_fine: bool = setting(
        False, "With --instance_gated and --instance_pool > 1: gate the category maps at their "
        "own resolution (gate upsampled); maps, masks, boxes and losses keep it (not in the "
        "paper).")

    def __post_init__(self):
        super().__post_init__()
        if self.instance_fine and not self.instance_gated:
            raise ValueError("instance_fine gates the category maps: it needs instance_gated")
        if self.instance_canvas and self.instance_decoder != "dynamic":
            raise ValueError("instance_canvas needs instance_decoder='dynamic'")
        if self.stop_input == "state_residual_centers" and not self.instance_centers:
            raise ValueError("stop_input='state_residual_centers' reads the centre maps the "
                             "instance network is given: it needs --instance_centers")
        if self.instance_centers and not self.center_head:
            raise ValueError("instance_centers feeds the centre heatmaps to the instance "
                             "network: it needs --center_head")
        if self.center_head and self.backbone == "vgg16":
            raise ValueError("center_head is built on the mnist backbone's category network; "
                             "pass --backbone=mnist or --nocenter_head")
        if self.backbone == "vgg16" and not self.backbone_weights:
            object.__setattr__(self, "backbone_weights", "imagenet")
        elif self.backbone != "vgg16" and self.backbone_weights:
            object.__setattr__(self, "backbone_weights", "")  # Only VGG16 has such weights.


INSTANCE_LOSSES = ("l2", "bce")
BOX_LOSSES = ("smooth_l1", "l1")
MATCHINGS = ("hungarian", "first_n", "ordered", "largest_first")
LAMBDA_GAMMA_READINGS = ("weights", "floors")
UNMATCHED_STEPS = ("empty", "free")


@dataclasses.dataclass(frozen=True)
class LossConfig(Settings):
    """Loss settings (sections 2.1-2.3, Appendix B). lambda, gamma and eta are applied in one
    place, `losses.weighted_total`."""

    category_p: float = setting(0.1, "p of D_p (eq. 2) in the category loss.", lower=0.0)
    instance_p: float = setting(0.1, "p of D_p in the instance loss and the matching cost.",
                                lower=0.0)
    lam: float = setting(1.0, "lambda: weight of the matched-instance term after warm-up.",
                         lower=0.0)
    gamma: float = setting(1.0, "gamma: weight of the summed-map (stop) term after warm-up.",
                           lower=0.0)
    warmup_weight: float = setting(0.3, "lambda = gamma during a stage's first epoch "
                                   "(Appendix B: 0.3, then 1.0).", lower=0.0)
    eta: float = setting(1.0, "eta: weight of the box-regression term.", lower=0.0)
    box_loss: str = setting(
        "smooth_l1", "The box term's distance: eq. 4's smooth L1, or 'l1' (DETR's; the smooth "
        "L1 never leaves its quadratic part on [0, 1] coordinates, so small errors get small "
        "gradients).", choices=BOX_LOSSES)
    giou_weight: float = setting(
        0.0, "Weight of a 1 - GIoU term per matched box, beside the box term (DETR; not in the "
        "paper; 0: off).", lower=0.0)
    instance_loss: str = setting(
        "l2", "Matched instance-map loss: eq. 2's weighted L2, or section 5's pixel-wise "
        "cross-entropy (needs --instance_activation=sigmoid).", choices=INSTANCE_LOSSES)
    size_weighting: bool = setting(
        False, "Weigh each matched instance inversely to its area (section 5).")
    category_size_weighting: bool = setting(
        False, "Weigh the category loss's object pixels inversely to their object's area "
        "(section 5), so small digits count as much as large ones.")
    stop_weight: float = setting(1.0, "Weight of the stop head's cross-entropy.", lower=0.0)
    matching: str = setting(
        "hungarian", "Which step learns which object (section 2.2's idx()): 'hungarian' over "
        "all T steps (the paper), or over the first n (not in the paper): 'first_n' optimal, "
        "'ordered' left to right, 'largest_first'.", choices=MATCHINGS)
    paper_lambda_gamma: str = setting(
        "weights", "Eq. 3's lost D_lambda, D_gamma: 'weights', lambda and gamma weigh the terms, "
        "each D_p with --instance_p; 'floors', D_p with p = lambda, gamma, weight 1. "
        "See docs/paper_fidelity.md.", choices=LAMBDA_GAMMA_READINGS)
    unmatched_steps: str = setting(
        "empty", "Steps beyond the object count: 'empty', trained toward the all-zero map; "
        "'free', left out of the matched term (only the summed-map term constrains them). "
        "See docs/paper_fidelity.md.", choices=UNMATCHED_STEPS)
    center_weight: float = setting(
        0.05, "Weight of the centre heatmap's focal loss (with --center_head); at 1 it takes "
        "over the category network's shared layers.", lower=0.0)
    dice_weight: float = setting(
        0.0, "Weight of a dice term per matched instance map (as in DETR's mask loss): one "
        "loss per object whatever its size (not in the paper; 0: off).", lower=0.0)


@dataclasses.dataclass(frozen=True)
class DataConfig(Settings):
    """Input pipeline settings (decompnet_tf.data.pipeline)."""

    dataset: str = setting("decomp_mnist/small", "TFDS dataset/config to train on.")
    data_dir: str | None = setting(None, "TFDS data dir (default ~/tensorflow_datasets).")
    batch_size: int = setting(32, "Global batch size.", lower=1)
    max_per_class: int = setting(
        10, "Objects per category kept in the targets (padding size M); decomp_mnist has at "
        "most 10 objects per image, so 10 loses nothing.", lower=1)
    shuffle_buffer: int = setting(2048, "Examples in the training shuffle buffer.", lower=1)
    train_examples: int = setting(0, "Use only the first N training images (0: all).",
                                  lower=0)
    validation_examples: int = setting(
        500, "Validation images: the first N of the validation split (0: all), or for a dataset "
        "without one (decomp_kitti) the last N training images, held out. See README, "
        "\"Training\".", lower=0)


CATEGORY_SOURCES = ("network", "truth")
# The solvers of the matching rule (LossConfig.matching); matching_solver adds "auto" (either).
MATCHING_SOLVERS = ("scipy", "graph")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Settings):
    """Training schedule. `stages`: the paper's stages to run, in order (1: category net
    alone; 2: instance net and box regressor, category net frozen; 3: everything end to end);
    `epochs` and `learning_rates` have one value per stage."""

    model_dir: str = setting("runs/default", "Checkpoints, config.json, logs, model.")
    stages: tuple[int, ...] = setting(
        (1, 2), "Stages to run in order: 1 category, 2 instance, 3 all.", lower=1, upper=3)
    epochs: tuple[int, ...] = setting((1, 1), "Epochs per stage.", lower=0)
    optimizer: str = setting("sgd", "Optimizer (SGD with momentum default).",
                             choices=("sgd", "adam"))
    learning_rates: tuple[float, ...] = setting((0.01, 0.01), "Learning rate per stage.",
                                                lower=0.0)
    momentum: float = setting(0.9, "SGD momentum.", lower=0.0, upper=1.0)
    lr_decay: float = setting(1.0, "Learning-rate factor applied after every epoch "
                              "(--lr_schedule=exponential).", lower=0.0)
    lr_schedule: str = setting(
        "exponential", "Per stage: the rate times --lr_decay each epoch, or 'cosine': linear "
        "warm-up over --warmup_steps, then cosine decay to 0 at the stage's last step.",
        choices=("exponential", "cosine"))
    warmup_steps: int = setting(0, "Warm-up steps of --lr_schedule=cosine.", lower=0)
    ema_momentum: float = setting(
        0.0, "Train with an exponential moving average of the weights at this momentum (e.g. "
        "0.999), swapped in at each stage's end (0: off).", lower=0.0, upper=0.9999)
    clipnorm: float = setting(10.0, "Gradient norm clipping (0: off).", lower=0.0)
    steps_per_epoch: int = setting(
        0, "Batches per epoch of decompNet's stages (0: training images / batch size): "
        "more images under a smaller --train_examples' schedule.", lower=0)
    checkpoint_steps: int = setting(0, "Also checkpoint every N steps (0: per epoch); the "
                                    "baseline checkpoints per epoch only.", lower=0)
    init_category_from: str = setting(
        "", "Start from the category network of this earlier run's model_dir (then train "
        "--stages=2 only): instance-network variants share one stage 1.")
    category_source: str = setting(
        "network", "What stage 2's instance network decomposes: the category network's maps "
        "(the paper), or 'truth': the sum of the true masks, no stage 1 needed (not in the "
        "paper). Stage 3 uses the network's.", choices=CATEGORY_SOURCES)
    matching_solver: str = setting(
        "auto", "Solver of --matching's rule (same optimum): 'scipy' on the host (fastest on "
        "CPUs), 'graph' in TensorFlow ops (XLA, TPUs), or 'auto': graph with --jit_compile or "
        "a TPU, else scipy.", choices=("auto", *MATCHING_SOLVERS))
    jit_compile: bool = setting(
        False, "Compile the training step with XLA (then the matching runs in the graph). Set "
        "explicitly: Keras's 'auto' would pick XLA on a GPU, which the scipy solver cannot "
        "run.")
    strategy: str = setting("default", "tf.distribute strategy.",
                            choices=STRATEGIES)
    tpu: str = setting("", "TPU name or address for --strategy=tpu.")
    seed: int = setting(0, "Random seed (shuffling, initialisation).")
    verbose: int = setting(1, "Keras verbosity: 1 progress bar, 2 one line per epoch.",
                           lower=0, upper=2)


@dataclasses.dataclass(frozen=True)
class BaselineConfig(Settings):
    """The sliding-window CNN baseline of section 3.1 (models.baseline, detectors.sliding_window).

    `min_size` / `max_size` are the known range of object sizes in px, the paper's "very strong
    prior" (decomp_mnist's objects span about 10-56 px).
    """

    patch_size: int = setting(32, "Baseline: classifier input size in px.", lower=4)
    positives_per_object: int = setting(2, "Baseline: positive patches per object.", lower=0)
    negatives_per_image: int = setting(8, "Baseline: background patches per image.", lower=0)
    min_size: float = setting(10.0, "Baseline: smallest window side in px.",
                              flag="window_min_size", lower=1.0)
    max_size: float = setting(56.0, "Baseline: largest window side in px.",
                              flag="window_max_size", lower=1.0)
    step: int = setting(5, "Baseline: window stride in px (paper: 3 or 5).",
                        flag="window_step", lower=1)
    nms_iou: float = setting(0.3, "Baseline: NMS IoU threshold (paper: 0.3).", lower=0.0,
                             upper=1.0)
    hard_negatives: bool = setting(
        True, "Baseline: mine hard negatives as R-CNN does: windows scored as a digit with IoU "
        "< --hard_negative_iou with its class's digits. Off: random background only. "
        "See RESULTS.md, \"The baseline's training\".")
    mine_every: int = setting(
        1, "Baseline: mine hard negatives before every N-th epoch (from the second on).",
        lower=1)
    mine_images: int = setting(
        500, "Baseline: training images (a random subset, new each round) whose windows one "
        "mining round scores.", lower=1)
    hard_negatives_per_image: int = setting(
        8, "Baseline: the top-scoring mistakes of each mined image added as background.",
        lower=1)
    hard_negative_min_score: float = setting(
        0.3, "Baseline: a mined window's digit probability must be at least this.", lower=0.0,
        upper=1.0)
    hard_negative_iou: float = setting(
        0.5, "Baseline: a window is a mistake when its IoU with every true digit of the class "
        "the classifier gives it is below this (and background when --background_iou says so).",
        lower=0.0, upper=1.0)
    background_iou: float = setting(
        0.3, "Baseline: a background patch, random or mined, overlaps every digit by IoU below "
        "this; windows between it and 0.5 teach neither class.", lower=0.0, upper=1.0)
    hard_negative_pool: int = setting(
        20000, "Baseline: most mined negatives kept (the oldest rounds' leave first).", lower=1)
    box_regression: bool = setting(
        True, "Baseline: R-CNN's box regression (not in the paper, whose objects were square): "
        "the classifier also moves and resizes each window onto its digit's box.",
        flag="baseline_box_regression")
    background_share: float = setting(
        0.5, "Baseline: the share of background patches in every training batch (R-CNN: 0.75); "
        "0: the sampled patches' own mix, shuffled.", lower=0.0, upper=0.95)


BOX_SOURCES = ("regressor", "mask", "component", "refined")


@dataclasses.dataclass(frozen=True)
class InferenceConfig(Settings):
    """How a trained DecompNet's outputs become detections (`postprocess`), stored in config.json
    so that evaluate.py, export.py and predict.py detect as calibrated; a flag given overrides
    the stored value (`config_flags.resolve_settings`)."""

    stop_threshold: float = setting(
        0.5, "Stop signal (the maps' peak, or the stop head's objectness) below which a step "
        "is not a detection.", lower=0.0)
    mask_threshold: float = setting(
        0.1, "Instance-map value above which a pixel is in the mask (the paper's Figure 6 "
        "uses 0.1).", lower=0.0)
    segmentation_delta: float = setting(
        0.1, "delta of the segmentation score, eq. 6: pixels at or below it are noise.",
        lower=0.0)
    box_source: str = setting(
        "regressor", "decompNet boxes: the box regressor's (section 2.3), 'mask': each map's "
        "extent above half its peak, 'component': its main 8-connected blob's, 'refined': the "
        "image's ink in that blob.", choices=BOX_SOURCES)


# Fields that config.json files of earlier versions may hold and the dataclasses do not have:
# ignored on load, so those runs still load.
REMOVED_FIELDS = {"ModelConfig": {"segmentation_delta"}, "DataConfig": {"seed"}}
# {dataclass: {old name: new name}}: a config.json with the old key still loads (model dirs
# outlive versions).
RENAMED_FIELDS = {"TrainConfig": {"matcher": "matching_solver", "instance_input": "category_source",
                                   "category_maps": "category_source"}}
# {dataclass: {old flag name: field name}}: a renamed flag still parses for one version, with a
# deprecation line naming the new (config_flags.define_flags); emptied at each version bump.
# {dataclass: {field: old default}}: fields whose default changed; a config.json without the
# field was written under the old default and keeps it.
OLD_DEFAULTS = {"BaselineConfig": {"box_regression": False}}
FLAG_ALIASES: dict[str, dict[str, str]] = {"TrainConfig": {"category_maps": "category_source"}}


@dataclasses.dataclass(frozen=True)
class Config:
    kind: str = "decompnet"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)
    # How evaluate.py, export.py and predict.py turn the outputs into detections by default.
    inference: InferenceConfig = dataclasses.field(default_factory=InferenceConfig)

    def __post_init__(self):
        if self.loss.instance_loss == "bce" and self.model.instance_activation != "sigmoid":
            raise ValueError(
                "instance_loss='bce' needs probabilities: set instance_activation='sigmoid' "
                f"(got {self.model.instance_activation!r})")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        """The Config of `to_json`'s text; missing sections and fields get their defaults."""
        raw = json.loads(text)

        def build(kind, values):
            fields = {f.name for f in dataclasses.fields(kind)}
            renamed = RENAMED_FIELDS.get(kind.__name__, {})
            values = {**OLD_DEFAULTS.get(kind.__name__, {}), **values}
            values = {renamed.get(k, k): v for k, v in values.items()
                      if k not in REMOVED_FIELDS.get(kind.__name__, ())}
            unknown = set(values) - fields
            if unknown:
                raise ValueError(f"unknown {kind.__name__} fields in config: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(raw.get("kind", "decompnet"), build(ModelConfig, raw.get("model", {})),
                   build(LossConfig, raw.get("loss", {})), build(DataConfig, raw.get("data", {})),
                   build(TrainConfig, raw.get("train", {})),
                   build(BaselineConfig, raw.get("baseline", {})),
                   build(InferenceConfig, raw.get("inference", {})))
