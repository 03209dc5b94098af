"""decompnet_tf.eval."""
