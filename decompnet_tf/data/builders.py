"""Opening the project's TFDS datasets, and the logical splits every script reads.

Splits ("train", "validation", "test"):
- "test": the dataset's held-out test split, read once per reported model (decomp_kitti's is
  the standard val set, TFDS split "validation", since KITTI's own test set has no labels);
- "validation": the LAST `validation_examples` images of the training split, never trained on:
  model selection, threshold calibration, ablations and training-time validation read these;
- "train": the training split without them (then `train_examples` keeps its first N).
"""

from __future__ import annotations

SPLITS = ("train", "validation", "test")


def open_builder(dataset: str, data_dir: str | None = None, prepare: bool = True):
    """The TFDS builder of `dataset` ("decomp_mnist/bundled", "decomp_kitti/cars", ...), with
    the project's builders registered; `prepare` builds it first if needed (offline for
    decomp_mnist; decomp_kitti reads the user's manual download)."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers decomp_mnist and decomp_kitti)

    builder = tfds.builder(dataset, data_dir=data_dir)
    if prepare:
        builder.download_and_prepare()
    return builder


def is_kitti(dataset: str) -> bool:
    """True for a decomp_kitti dataset name (with or without config and version)."""
    return dataset.split("/")[0].split(":")[0] == "decomp_kitti"


def tfds_split(dataset: str, split: str, validation_examples: int,
               num_train: int | None = None) -> str:
    """The TFDS split string of a logical split (see the module docstring).

    Args:
      dataset: TFDS name.
      split: "train", "validation" or "test".
      validation_examples: V, training images held out as the validation split (0: none).
      num_train: images in the TFDS train split, to check that V leaves some to train on.

    Raises:
      ValueError: an unknown split, or a validation split that leaves nothing to train on /
        is asked for while V = 0.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if num_train is not None and validation_examples >= num_train:
        raise ValueError(
            f"validation_examples={validation_examples} holds out the whole training split of "
            f"{dataset} ({num_train} images); hold out fewer (e.g. --validation_examples="
            f"{num_train // 10})")
    if split == "test":
        return "validation" if is_kitti(dataset) else "test"
    if split == "validation":
        if not validation_examples:
            raise ValueError(f"no validation split: validation_examples is 0 for {dataset}; "
                             "set --validation_examples to hold out training images")
        return f"train[-{validation_examples}:]"
    return f"train[:-{validation_examples}]" if validation_examples else "train"
