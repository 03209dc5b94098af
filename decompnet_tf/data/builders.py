"""Opening the project's TFDS datasets, and the logical splits every script reads.

"test" is read once per reported model (decomp_kitti's is TFDS "validation": KITTI's test set
has no labels). "validation", for choosing settings, is the first `validation_examples` of the
dataset's validation split (0: all) or, without one, the LAST training images, out of "train".
"""

from __future__ import annotations

from collections.abc import Mapping

SPLITS = ("train", "validation", "test")


def open_builder(dataset: str, data_dir: str | None = None, prepare: bool = True):
    """The TFDS builder of `dataset` (e.g. "decomp_kitti/cars"), built first if `prepare`."""
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
    """The TFDS split string of a logical split; `splits`: the TFDS split sizes (None: no
    validation split). Raises ValueError when the held-out count leaves no split to read."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "test":
        return "validation" if is_kitti(dataset) else "test"
    if splits and "validation" in splits and not is_kitti(dataset):
        if split == "train":
            return "train"
        # TFDS refuses a slice past the split's end: V at or above its size reads all of it.
        whole = not validation_examples or validation_examples >= splits["validation"]
        return "validation" if whole else f"validation[:{validation_examples}]"
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
