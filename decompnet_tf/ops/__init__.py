"""Pure TensorFlow helper ops (box conversions and IoU)."""
