"""decompnet_tf.data."""
