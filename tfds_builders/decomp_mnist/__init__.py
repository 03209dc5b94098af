"""decomp_mnist: synthetic multi-digit MNIST (paper section 3.1)."""

from tfds_builders.decomp_mnist.decomp_mnist_dataset_builder import (
    CLASS_NAMES,
    DecompMnist,
    DecompMnistConfig,
)

__all__ = ["CLASS_NAMES", "DecompMnist", "DecompMnistConfig"]
