"""The tf.data pipeline of training: TFDS examples -> (images, per-category targets)."""

from __future__ import annotations

import tensorflow as tf

from decompnet_tf.config import DataConfig
from decompnet_tf.data.builders import is_kitti, open_builder, split_of


def category_masks(masks: tf.Tensor, labels: tf.Tensor, num_classes: int,
                   map_size: tuple[int, int], max_per_class: int):
    """Masks [n, H, W, 1] grouped by category, area-averaged to `map_size`, first M per category.

    Returns (float32 [C, M, h, w] zero-padded, per category int64 kept indices, int32 [C] counts).
    """
    masks = tf.cast(masks, tf.float32)
    if tuple(masks.shape[1:3]) != tuple(map_size):
        masks = tf.image.resize(masks, map_size, method="area")
    masks = masks[..., 0]  # [n, h, w]
    labels = tf.cast(labels, tf.int32)
    per_mask, kept, counts = [], [], []
    for c in range(num_classes):
        idx = tf.where(tf.equal(labels, c))[:, 0][:max_per_class]
        n = tf.shape(idx)[0]
        per_mask.append(tf.pad(tf.gather(masks, idx), [[0, max_per_class - n], [0, 0], [0, 0]]))
        kept.append(idx)
        counts.append(n)
    masks_c = tf.ensure_shape(tf.stack(per_mask), (num_classes, max_per_class, *map_size))
    return masks_c, kept, tf.stack(counts)


def category_maps(masks_c: tf.Tensor) -> tf.Tensor:
    """float32 [h, w, C]: each category's masks summed (section 2.1), from [C, M, h, w]."""
    return tf.transpose(tf.reduce_sum(masks_c, axis=1), (1, 2, 0))


def prepare_example(example: dict, num_classes: int, map_size: tuple[int, int],
                    max_per_class: int, instance_size: tuple[int, int] | None = None):
    """One TFDS example -> (image float32 [H, W, channels] in [0, 1], targets).

    Args:
        example: "image" uint8 [H, W, 1]; "objects" with "mask" uint8 [n, H, W, 1] (0/1), "bbox"
            float32 [n, 4] (ymin, xmin, ymax, xmax) and "label" int64 [n] in [0, C).
        instance_size: (h', w') of pooled instance maps (default `map_size`, (h, w)).

    Returns:
        targets: float32 "masks" [C, M, h', w'], "boxes" [C, M, 4] and "category_target" [h, w, C],
        int32 "valid" [C, M] (not bool: Keras averages a first batch across replicas) and int32
        "num_objects" [C].
    """
    image = tf.cast(example["image"], tf.float32) / 255.0
    objects = example["objects"]
    labels = tf.cast(objects["label"], tf.int32)
    tf.debugging.assert_less(labels, num_classes, message=(
        f"decomp_mnist label out of range: expected class ids in [0, {num_classes})"))
    tf.debugging.assert_non_negative(labels, message="negative class id in the labels")
    masks_c, kept, counts = category_masks(objects["mask"], labels, num_classes, map_size,
                                           max_per_class)
    boxes = tf.cast(objects["bbox"], tf.float32)
    per_box = [tf.pad(tf.gather(boxes, idx), [[0, max_per_class - tf.shape(idx)[0]], [0, 0]])
               for idx in kept]
    category_target = category_maps(masks_c)
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


def make_dataset(config: DataConfig, split: str, num_classes: int, map_size, training: bool,
                 repeat: bool = False, image_size=None, instance_size=None,
                 seed: int = 0) -> tf.data.Dataset:
    """Batched (images [B, H, W, channels], `prepare_example`'s targets) of a logical `split`,
    shuffled by `seed` (the run's, `TrainConfig.seed`) when `training`.

    decomp_kitti examples first become box-mask examples at `image_size` (`kitti_example`).
    """
    import tensorflow_datasets as tfds

    from decompnet_tf.data.decomp_kitti import kitti_example

    builder = open_builder(config.dataset, config.data_dir)
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    # train_examples keeps the first N images of the split's fixed read order (its shards
    # interleaved in order): the same N every epoch and run. Shuffled files would put other
    # images first each epoch.
    limit = training and split == "train" and config.train_examples
    ds = builder.as_dataset(split=data_split(config, split, builder),
                            shuffle_files=training and not limit, read_config=read_config)
    kitti = is_kitti(config.dataset)
    if limit:
        ds = ds.take(config.train_examples)
        if not kitti:
            # The same N examples every epoch, in the same order: decode them once and keep
            # them (decoding the PNGs is most of the pipeline's work; decomp_kitti's images are
            # far larger). Before the shuffle, so every epoch is still shuffled anew.
            ds = ds.cache()
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if kitti and image_size is None:
        raise ValueError("decomp_kitti needs the model's image_size to resize its images")

    def prepare(ex):
        if kitti:
            ex = kitti_example(ex, tuple(image_size), tuple(map_size))
        return prepare_example(ex, num_classes, tuple(map_size), config.max_per_class,
                               instance_size)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    ds = ds.batch(config.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    # Under tf.distribute with several workers every worker reads its own share of the
    # examples: shard by element (the datasets have too few files for file sharding), after
    # the same seeded shuffle on every worker.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def data_split(config: DataConfig, split: str, builder) -> str:
    """The TFDS split string of the logical `split` for this data config."""
    return split_of(builder, split, config.validation_examples)


def num_examples(config: DataConfig, split: str) -> int:
    """Images in the logical `split`, after the `train_examples` limit."""
    builder = open_builder(config.dataset, config.data_dir, prepare=False)
    n = builder.info.splits[data_split(config, split, builder)].num_examples
    if split == "train" and config.train_examples:
        n = min(n, config.train_examples)
    return n
