"""TFDS builders of decompnet-tf. Importing this package registers them with TFDS:

    import tensorflow_datasets as tfds
    import tfds_builders  # noqa: F401
    ds = tfds.load("decomp_mnist/small", split="train")
"""

from tfds_builders.decomp_kitti import DecompKitti
from tfds_builders.decomp_mnist import DecompMnist

__all__ = ["DecompKitti", "DecompMnist"]
