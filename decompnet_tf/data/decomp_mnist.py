"""tf.data pipeline over decomp_mnist: TFDS examples -> (images, per-category targets).

Pure preprocessing (`prepare_example`) works eagerly and inside `tf.data`; `make_dataset` wires
it to TFDS with shuffling, batching and prefetching.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline settings.

    Attributes:
      dataset: TFDS name with config, e.g. "decomp_mnist/small".
      data_dir: TFDS data dir (None: ~/tensorflow_datasets).
      batch_size: global batch size.
      max_per_class: objects per category kept in the targets (padding size M); decomp_mnist
        has at most 10 objects per image, so 10 loses nothing.
      shuffle_buffer: examples in the shuffle buffer (training only).
      train_examples: use only the first N training images (0: all); for quick runs.
      seed: shuffling seed.
    """

    dataset: str = "decomp_mnist/small"
    data_dir: str | None = None
    batch_size: int = 32
    max_per_class: int = 10
    shuffle_buffer: int = 2048
    train_examples: int = 0
    seed: int = 0


def prepare_example(example: dict, num_classes: int, map_size: tuple[int, int],
                    max_per_class: int, instance_size: tuple[int, int] | None = None):
    """One TFDS example -> (image, targets).

    Args:
      example: {"image": uint8 [H, W, 1], "objects": {"mask": uint8 [n, H, W, 1] (0/1),
        "bbox": float32 [n, 4] (ymin, xmin, ymax, xmax), "label": int64 [n]}}.
      num_classes: C; labels must lie in [0, C).
      map_size: (h, w) of the response maps; masks are area-averaged down to it (soft masks).
      max_per_class: M, the per-category padding size; further objects are dropped.
      instance_size: (h', w') of the instance maps when the model pools the category maps
        (`DecompNet.instance_pool`); default (h, w).

    Returns:
      image: float32 [H, W, channels] in [0, 1].
      targets: {"masks": float32 [C, M, h', w'], "boxes": float32 [C, M, 4],
        "valid": int32 [C, M], 1 for real objects (first), 0 for padding (int, not bool: Keras
        averages a first batch across replicas under tf.distribute, which bool cannot do),
        "category_target": float32 [h, w, C] (the SUM of the category's masks, sec. 2.1),
        "num_objects": int32 [C]}.
    """
    image = tf.cast(example["image"], tf.float32) / 255.0
    objects = example["objects"]
    labels = tf.cast(objects["label"], tf.int32)
    tf.debugging.assert_less(labels, num_classes, message=(
        f"decomp_mnist label out of range: expected class ids in [0, {num_classes})"))
    tf.debugging.assert_non_negative(labels, message="negative class id in the labels")
    masks = tf.cast(objects["mask"], tf.float32)  # [n, H, W, 1]
    if tuple(masks.shape[1:3]) != tuple(map_size):
        masks = tf.image.resize(masks, map_size, method="area")
    masks = masks[..., 0]  # [n, h, w]
    boxes = tf.cast(objects["bbox"], tf.float32)
    per_mask, per_box, counts = [], [], []
    for c in range(num_classes):
        idx = tf.where(tf.equal(labels, c))[:, 0][:max_per_class]
        n = tf.shape(idx)[0]
        pad = max_per_class - n
        per_mask.append(tf.pad(tf.gather(masks, idx), [[0, pad], [0, 0], [0, 0]]))
        per_box.append(tf.pad(tf.gather(boxes, idx), [[0, pad], [0, 0]]))
        counts.append(n)
    masks_c = tf.ensure_shape(tf.stack(per_mask), (num_classes, max_per_class, *map_size))
    counts = tf.stack(counts)
    category_target = tf.transpose(tf.reduce_sum(masks_c, axis=1), (1, 2, 0))
    if instance_size is not None and tuple(instance_size) != tuple(map_size):
        flat = tf.image.resize(tf.reshape(masks_c, (-1, *map_size, 1)), instance_size, "area")
        masks_c = tf.reshape(flat, (num_classes, max_per_class, *instance_size))
    targets = {
        "masks": masks_c,
        "boxes": tf.ensure_shape(tf.stack(per_box), (num_classes, max_per_class, 4)),
        "valid": tf.sequence_mask(counts, max_per_class, dtype=tf.int32),
        "category_target": category_target,
        "num_objects": counts,
    }
    return image, targets


def dataset_split(dataset: str, split: str) -> str:
    """The TFDS split for "train" / "test": decomp_kitti names its held-out split "validation"
    (the standard 3,712 / 3,769 split; KITTI's own test set has no labels)."""
    from decompnet_tf.data.decomp_kitti import is_kitti

    return "validation" if is_kitti(dataset) and split == "test" else split


def make_dataset(config: DataConfig, split: str, num_classes: int, map_size, training: bool,
                 repeat: bool = False, image_size=None, instance_size=None) -> tf.data.Dataset:
    """Batched (images [B, H, W, channels], targets as in `prepare_example` with a batch axis).

    decomp_kitti examples are first turned into box-mask examples at `image_size` (required
    for it) by `decomp_kitti.kitti_example`.
    """
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers decomp_mnist and decomp_kitti)
    from decompnet_tf.data.decomp_kitti import is_kitti, kitti_example

    builder = tfds.builder(config.dataset, data_dir=config.data_dir)
    builder.download_and_prepare()
    read_config = tfds.ReadConfig(shuffle_seed=config.seed)
    ds = builder.as_dataset(split=dataset_split(config.dataset, split), shuffle_files=training,
                            read_config=read_config)
    if training and config.train_examples:
        ds = ds.take(config.train_examples)
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    kitti = is_kitti(config.dataset)
    if kitti and image_size is None:
        raise ValueError("decomp_kitti needs the model's image_size to resize its images")

    def prepare(ex):
        if kitti:
            ex = kitti_example(ex, tuple(image_size), tuple(map_size))
        return prepare_example(ex, num_classes, tuple(map_size), config.max_per_class,
                               instance_size)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return ds.batch(config.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def num_examples(config: DataConfig, split: str) -> int:
    """Images in `split`, after the `train_examples` limit."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    info = tfds.builder(config.dataset, data_dir=config.data_dir).info
    n = info.splits[dataset_split(config.dataset, split)].num_examples
    if split == "train" and config.train_examples:
        n = min(n, config.train_examples)
    return n
