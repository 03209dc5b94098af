"""BoxRegressor: instance map -> box (paper section 2.3).

"A simple feed forward neural network that was constructed by 1 hidden layer with 4K hidden
units", with dropout, predicting (x, y, w, h): the box centre, width and height, each scaled to
[0, 1] (a sigmoid output). `decompnet_tf.ops.boxes.xywh_to_yxyx` converts to the project's
(ymin, xmin, ymax, xmax) convention.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="decompnet_tf")
class BoxRegressor(layers.Layer):
    """Call: instance maps [batch, h, w, 1] (or any [batch, ...] input, e.g. a recurrent state
    [batch, units]) -> boxes [batch, 4] (x, y, w, h) in [0, 1]."""

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
