"""decompnet_tf.export."""
