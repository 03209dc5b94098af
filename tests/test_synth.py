"""Properties of the decomp_mnist generator (paper section 3.1) on many random images."""

import itertools

import numpy as np
import pytest

from tfds_builders.decomp_mnist import synth


def _examples(pools, split, n, seed=0, params=None):
    params = params or synth.SynthParams()
    images, labels = pools.split(split)
    return [synth.generate_example(seed, split, i, images, labels, params) for i in range(n)]


@pytest.fixture(scope="module")
def train_examples(bundled_pools):
    return _examples(bundled_pools, "train", 150)


def test_counts_labels_and_shapes(train_examples):
    counts = [len(ex.labels) for ex in train_examples]
    assert min(counts) >= 5 and max(counts) <= 10
    assert set(counts) == set(range(5, 11)), "150 images should show every count in 5..10"
    for ex in train_examples:
        n = len(ex.labels)
        assert ex.image.shape == (100, 100) and ex.image.dtype == np.uint8
        assert ex.masks.shape == (n, 100, 100) and ex.boxes.shape == (n, 4)
        assert set(np.unique(ex.labels)) <= {0, 1, 2}
    all_labels = np.concatenate([ex.labels for ex in train_examples])
    assert set(all_labels) == {0, 1, 2}


def test_pairwise_box_iou_at_most_0_2(train_examples):
    worst = 0.0
    for ex in train_examples:
        for i, j in itertools.combinations(range(len(ex.boxes)), 2):
            worst = max(worst, float(synth.box_iou(ex.boxes[i], ex.boxes[j : j + 1])[0]))
    assert worst <= 0.2 + 1e-6
    assert worst > 0.05, "objects should be allowed to overlap moderately"


def test_boxes_are_tight_bounds_of_binary_masks(train_examples):
    for ex in train_examples:
        assert set(np.unique(ex.masks)) <= {0, 1}
        for mask, box in zip(ex.masks, ex.boxes):
            assert mask.any()
            np.testing.assert_allclose(synth.mask_to_box(mask), box, atol=1e-6)


def test_objects_inside_image_and_scaled_half_to_double(train_examples):
    sides = []
    for ex in train_examples:
        assert (ex.boxes >= 0).all() and (ex.boxes <= 1).all()
        sides.append(np.maximum(ex.boxes[:, 2] - ex.boxes[:, 0], ex.boxes[:, 3] - ex.boxes[:, 1]))
    sides = np.concatenate(sides) * 100
    # A 28x28 MNIST digit's ink spans ~20 px; scaled by 0.5..2 it spans ~8..56 px.
    assert sides.min() >= 5 and sides.max() <= 56
    assert sides.min() < 14 and sides.max() > 40


def test_image_holds_masks_and_clutter(train_examples):
    for ex in train_examples:
        union = ex.masks.any(axis=0)
        assert (ex.image[union] > 0).all(), "every mask pixel is ink in the image"
        assert (ex.image[~union] > 0).sum() > 100, "30 clutter strokes add ink outside objects"


def test_pixelwise_max_combination(bundled_pools):
    images, labels = bundled_pools.split("train")
    params = synth.SynthParams(num_clutter=0)
    ex = synth.generate_example(3, "train", 7, images, labels, params)
    # Without clutter, every image pixel equals the max over the placed glyphs.
    recon = np.zeros((100, 100), np.uint8)
    for mask, label, digit_id, box in zip(ex.masks, ex.labels, ex.digit_ids, ex.boxes):
        y0, x0, y1, x1 = (box * 100).round().astype(int)
        assert labels[digit_id] == params.digit_classes[label]
        patch = np.where(mask[y0:y1, x0:x1] > 0, 1, 0)
        recon[y0:y1, x0:x1] = np.maximum(recon[y0:y1, x0:x1], patch)
    assert ((ex.image > 0) == (recon > 0)).all()


def test_deterministic_for_a_seed_and_different_across_seeds(bundled_pools):
    a = _examples(bundled_pools, "train", 5, seed=1)
    b = _examples(bundled_pools, "train", 5, seed=1)
    c = _examples(bundled_pools, "train", 5, seed=2)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.masks, y.masks)
        assert not np.array_equal(x.image, z.image)
    assert not np.array_equal(a[0].image, a[1].image)


def test_each_split_has_its_own_pool_and_its_own_images(bundled_pools):
    # The pools are disjoint (tests/test_digits.py): 350 / 50 / 100 digits of each class.
    sizes = {"train": 3500, "validation": 500, "test": 1000}
    firsts = {}
    for split, size in sizes.items():
        assert len(bundled_pools.split(split)[0]) == size
        examples = _examples(bundled_pools, split, 5)
        assert all(0 <= d < size for ex in examples for d in ex.digit_ids)
        firsts[split] = examples[0].image
    # The split enters the seed: image 0 of each split is another image.
    assert not np.array_equal(firsts["train"], firsts["validation"])
    assert not np.array_equal(firsts["validation"], firsts["test"])


def test_impossible_request_is_a_clear_error_not_a_hang(bundled_pools):
    images, labels = bundled_pools.split("train")
    params = synth.SynthParams(min_objects=30, max_objects=30, min_scale=1.9, max_iou=0.0,
                               tries_per_object=20, max_restarts=2)
    with pytest.raises(synth.GenerationError, match="could not place 30 objects"):
        synth.generate_example(0, "train", 0, images, labels, params)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"min_objects": 0}, "min_objects"), ({"max_scale": 4.0}, "larger than"),
     ({"max_iou": 1.5}, "max_iou")],
)
def test_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synth.SynthParams(**kwargs)
