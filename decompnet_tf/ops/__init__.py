"""Helper ops: box conversions and IoU in TensorFlow (boxes, assignment) and in NumPy
(np_boxes, windows)."""
