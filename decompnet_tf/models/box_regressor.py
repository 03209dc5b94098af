"""BoxRegressor: instance map -> box (paper section 2.3), one hidden layer with dropout."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="decompnet_tf")
class BoxRegressor(layers.Layer):
    """Instance maps [B, h, w, 1] (or any [B, ...], e.g. a recurrent state) -> boxes [B, 4]:
    centre x, y, width, height in [0, 1] (`ops.boxes.xywh_to_yxyx` converts them)."""

    def __init__(self, hidden: int = 4096, dropout: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.dropout = dropout

    def build(self, input_shape):
        flat = int(np.prod(input_shape[1:]))
        self.fc = layers.Dense(self.hidden, activation="relu", name="fc")
        self.drop = layers.Dropout(self.dropout, name="dropout")
        self.out = layers.Dense(4, activation="sigmoid", name="xywh")
        self.fc.build((None, flat))
        self.out.build((None, self.hidden))
        super().build(input_shape)

    def call(self, maps, training=None):
        flat = ops.reshape(maps, (-1, int(np.prod(maps.shape[1:]))))
        return self.out(self.drop(self.fc(flat), training=training))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "dropout": self.dropout}
