"""decompnet_tf.models."""
