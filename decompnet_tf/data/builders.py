"""Opening the project's TFDS datasets, and the logical splits every script reads.

Splits ("train", "validation", "test"):
- "test": the dataset's held-out test split, read once per reported model (decomp_kitti's is
  the standard val set, TFDS split "validation", since KITTI's own test set has no labels);
- "validation": model selection, threshold calibration, ablations and training-time validation
  read it. decomp_mnist (2.0.0 on) has its own, made of digits no training image uses: the
  first `validation_examples` of its images (0: all). A dataset without one (decomp_kitti)
  holds out the LAST `validation_examples` images of its training split, never trained on;
- "train": the training split, less any images held out (then `train_examples` keeps its
  first N).
"""

from __future__ import annotations

from collections.abc import Mapping

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
               splits: Mapping[str, int] | None = None) -> str:
    """The TFDS split string of a logical split (see the module docstring).

    Args:
      dataset: TFDS name.
      split: "train", "validation" or "test".
      validation_examples: V, the validation images: the first V of the dataset's own
        validation split (0: all), or without one, training images held out (0: none).
      splits: the dataset's TFDS splits and their sizes ({"train": 30000, ...}); without it
        the dataset counts as having no validation split of its own.

    Raises:
      ValueError: an unknown split, or held-out validation images that leave nothing to train
        on / are asked for while V = 0.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "test":
        return "validation" if is_kitti(dataset) else "test"
    if splits and "validation" in splits and not is_kitti(dataset):
        if split == "train":
            return "train"
        return f"validation[:{validation_examples}]" if validation_examples else "validation"
    num_train = splits.get("train") if splits else None
    if num_train is not None and validation_examples >= num_train:
        raise ValueError(
            f"validation_examples={validation_examples} holds out the whole training split of "
            f"{dataset} ({num_train} images); hold out fewer (e.g. --validation_examples="
            f"{num_train // 10})")
    if split == "validation":
        if not validation_examples:
            raise ValueError(f"no validation split: validation_examples is 0 for {dataset}; "
                             "set --validation_examples to hold out training images")
        return f"train[-{validation_examples}:]"
    return f"train[:-{validation_examples}]" if validation_examples else "train"


def split_of(builder, split: str, validation_examples: int) -> str:
    """`tfds_split` for an opened TFDS builder (its name and split sizes)."""
    sizes = {name: info.num_examples for name, info in builder.info.splits.items()}
    return tfds_split(builder.info.full_name, split, validation_examples, sizes)
