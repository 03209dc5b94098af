"""The detectors evaluate.py scores (each a `Detector`), built from a trained model_dir."""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from decompnet_tf.config import InferenceConfig
from decompnet_tf.data.builders import is_kitti, open_builder
from decompnet_tf.detectors.components import ComponentsDetector
from decompnet_tf.detectors.decompnet import DecompDetector
from decompnet_tf.detectors.exported import SavedModelDetector, TFLiteDetector
from decompnet_tf.detectors.peaks import PeaksDetector
from decompnet_tf.detectors.sliding_window import SlidingWindowDetector
from decompnet_tf.model_io import Run

DETECTORS = ("decompnet", "components", "peaks")


@runtime_checkable
class Detector(Protocol):
    """What `eval.runner` runs."""

    def predict(self, images: np.ndarray, gts: list[dict] | None = None) -> dict:
        """Detections on images float32 [B, H, W, ch] in [0, 1].

        Args:
          gts: ground truth (`runner.iterate_examples`), read only for the TRUE category maps.

        Returns:
          numpy, OD API names: "detection_boxes" [B, N, 4] (ymin, xmin, ymax, xmax normalised),
          "detection_classes", "detection_scores" [B, N], "num_detections" [B]; optionally
          "detection_masks" [B, N, H, W], "segmentation_scores", "category_maps" [B, h, w, C],
          and for the sheets "instance_maps", "boxes", "emitted".
        """
        ...

    def describe(self) -> dict:
        """JSON-serialisable settings, recorded as metrics.json's "model"."""
        ...


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """What to evaluate from a model_dir: evaluate.py's flags of the same names (a baseline
    model_dir is always the baseline)."""

    settings: InferenceConfig = dataclasses.field(default_factory=InferenceConfig)
    detector: str = "decompnet"
    category_source: str = "network"
    tflite: str | None = None
    window_step: int = 0
    stage: int = 0
    saved_model: str | None = None


def check_compatible(model_config, names, image_size, dataset: str) -> None:
    """Raises ValueError when the model's classes or input size do not fit the dataset (KITTI
    images are resized to the model's size)."""
    size_ok = is_kitti(dataset) or tuple(model_config.image_size) == tuple(image_size)
    if model_config.num_classes != len(names) or not size_ok:
        raise ValueError(
            f"the model ({model_config.num_classes} classes, input "
            f"{tuple(model_config.image_size)}) does not match the dataset {dataset} "
            f"({len(names)} classes {names}, images {tuple(image_size)}); pass the --dataset "
            "the model was trained for")


def check_same_dataset(runs: list[Run], dataset: str | None = None) -> None:
    """Raises ValueError when compared models were trained on different datasets and no
    common `dataset` is given (each would be scored on its own images)."""
    if dataset:
        return
    trained_on = {r.model_dir: r.config.data.dataset for r in runs}
    if len(set(trained_on.values())) > 1:
        listing = ", ".join(f"{d} on {name}" for d, name in trained_on.items())
        raise ValueError(f"the compared models were trained on different datasets ({listing}) "
                         "and would each be scored on its own; pass --dataset=NAME to evaluate "
                         "them all on one")


def load_detector(run: Run, spec: DetectorSpec, dataset: str | None = None,
                  data_dir: str | None = None):
    """(detector, TFDS builder) of `run`'s model on `dataset` (default: its own)."""
    config = run.config
    builder = open_builder(dataset or config.data.dataset, data_dir or config.data.data_dir)
    names = builder.info.features["objects"]["label"].names
    check_compatible(config.model, names, builder.info.features["image"].shape[:2],
                     builder.info.full_name)
    if spec.detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {spec.detector!r}")
    if config.kind == "baseline":
        base = config.baseline
        return SlidingWindowDetector(run.load_classifier(), config.model.image_size,
                                     base.min_size, base.max_size, spec.window_step or base.step,
                                     base.nms_iou), builder
    if spec.tflite and spec.saved_model:
        raise ValueError("pass --tflite or --saved_model, not both")
    if spec.saved_model:
        if not tf.io.gfile.exists(os.path.join(spec.saved_model, "saved_model.pb")):
            raise FileNotFoundError(f"--saved_model={spec.saved_model}: no saved_model.pb there; "
                                    "pass a version folder export.py wrote (export_dir/<version>)")
        return SavedModelDetector(spec.saved_model), builder
    if spec.tflite:
        if not tf.io.gfile.exists(spec.tflite):
            raise FileNotFoundError(f"--tflite={spec.tflite}: no such file; run export.py")
        return TFLiteDetector(spec.tflite), builder
    if spec.detector == "components":  # The category maps are enough.
        net = run.load_net(min_stage=1, stage=spec.stage)
        return ComponentsDetector(net, spec.category_source,
                                  max_per_class=config.data.max_per_class), builder
    if spec.detector == "peaks":  # The category maps and their centre maps.
        if spec.category_source != "network":
            raise ValueError("--detector=peaks reads the network's centre maps: drop "
                             "--category_source=truth")
        return PeaksDetector(run.load_net(min_stage=1, stage=spec.stage)), builder
    return DecompDetector(run.load_net(stage=spec.stage), spec.settings, spec.category_source,
                          config.data.max_per_class), builder
