"""decomp_kitti: KITTI cars from the user's own download (paper Appendix A)."""

from tfds_builders.decomp_kitti.decomp_kitti_dataset_builder import (
    DecompKitti,
    DecompKittiConfig,
)

__all__ = ["DecompKitti", "DecompKittiConfig"]
