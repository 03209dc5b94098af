"""InstanceCell: one step of the instance decomposition network (section 2.2, Fig. 2 third
variant, Appendix B).

    conv(1,32,5,2)-conv(32,32,3,2)-conv(32,32,3,2)-rnn-fc(2048)-rnn-fc(2048)
    -deconv(32,32,3,2)-deconv(32,32,3,2)-deconv(32,32,5,2)-deconv(32,1,1,1)

Appendix B prints the deconvolutions with stride 1, but also says "the stride 2 was used for
down and upsampling", and stride-1 layers cannot bring a 7x7 bottleneck back to the 50x50
response map; we read them as stride 2, mirroring the encoder, and crop after each one to the
encoder map of that size (see `layers.crop_like`).

The two fully connected recurrent layers are the memory of what was already emitted:
h1_t = relu(W1 enc(x) + U1 h1_{t-1} + b1), h2_t = relu(W2 h1_t + U2 h2_{t-1} + b2). A dense
layer maps h2_t back to the bottleneck grid for the decoder. Every step sees the same input,
the category response map being decomposed; only the state changes, so the cell emits one
instance per step and (ideally) an all-zero map once every instance was emitted.

Batch norm follows the encoder's convolutions (their input is the same at every step), but by
default not the decoder's (`decoder_norm=False`): the decoder's activations differ from step to
step (an object at step 1, an empty stop map at the end), so one set of moving statistics for
all steps does not match any step at inference. Measured on the overfit test: trained
with decoder batch norm, the maps were bright in training mode and dim in inference mode
(peaks 1.0 vs 0.27 on the same image). `decoder_norm=True` restores Appendix B's "after every
layer".

`skips=True` (not in the paper; issue 5 measures it) concatenates the step's encoder maps to
the decoder maps of the same size: the recurrent bottleneck then only has to say WHICH blob to
emit, not redraw its shape through 2048 numbers.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from decompnet_tf.models.layers import ConvBlock, crop_like

ENCODER = ((32, 5, 2), (32, 3, 2), (32, 3, 2))  # (filters, kernel, stride), Appendix B.
DECODER_KERNELS = (3, 3, 5)


@keras.saving.register_keras_serializable(package="decompnet_tf")
class InstanceCell(layers.Layer):
    """A Keras RNN cell: response map in, one instance map out.

    Call: (inputs [batch, h, w, 1], states [h1 [batch, units], h2 [batch, units]])
      -> (instance map [batch, h, w, 1], [h1, h2]).
    Usable in `keras.layers.RNN(cell, return_sequences=True)` over inputs [batch, T, h, w, 1],
    or in an explicit loop of T steps (as `DecompNet` does, which unrolls cleanly for TFLite).
    """

    def __init__(self, units: int = 2048, filters: int = 32, skips: bool = False,
                 output_activation: str = "sigmoid", decoder_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.filters = filters
        self.skips = skips
        self.output_activation = output_activation
        self.decoder_norm = decoder_norm
        self.state_size = [units, units]

    def build(self, input_shape):
        h, w = input_shape[-3], input_shape[-2]
        if h is None or w is None:
            raise ValueError(f"InstanceCell needs a static map size, got input {input_shape}")
        shape = (None, h, w, input_shape[-1])
        self.encoder, enc_shapes = [], [shape]
        for i, (f, k, s) in enumerate(ENCODER):
            block = ConvBlock(f, k, s, name=f"conv{i + 1}")
            block.build(shape)
            shape = block.compute_output_shape(shape)
            self.encoder.append(block)
            enc_shapes.append(shape)
        self.grid = shape[1:3]
        flat = shape[1] * shape[2] * shape[3]
        self.fc1 = layers.Dense(self.units, name="rnn_fc1")
        self.rec1 = layers.Dense(self.units, use_bias=False, name="rnn_fc1_recurrent",
                                 kernel_initializer="orthogonal")
        self.fc2 = layers.Dense(self.units, name="rnn_fc2")
        self.rec2 = layers.Dense(self.units, use_bias=False, name="rnn_fc2_recurrent",
                                 kernel_initializer="orthogonal")
        self.to_grid = layers.Dense(flat, activation="relu", name="to_grid")
        for dense, n_in in ((self.fc1, flat), (self.rec1, self.units), (self.fc2, self.units),
                            (self.rec2, self.units), (self.to_grid, self.units)):
            dense.build((None, n_in))
        self.decoder = []
        channels = shape[3]
        for i, k in enumerate(DECODER_KERNELS):
            in_ch = channels + (enc_shapes[-1 - i][3] if self.skips else 0)
            block = ConvBlock(self.filters, k, 2, transpose=True, norm=self.decoder_norm,
                              name=f"deconv{i + 1}")
            block.build((None, None, None, in_ch))
            self.decoder.append(block)
            channels = self.filters
        in_ch = channels + (enc_shapes[0][3] if self.skips else 0)
        self.head = layers.Conv2DTranspose(1, 1, 1, activation=self.output_activation,
                                           name="head")
        self.head.build((None, None, None, in_ch))
        super().build(input_shape)

    def call(self, inputs, states, training=None):
        h1, h2 = states[0], states[1]
        features, x = [inputs], inputs
        for block in self.encoder:
            x = block(x, training=training)
            features.append(x)
        flat = ops.reshape(x, (-1, self.grid[0] * self.grid[1] * x.shape[-1]))
        h1 = ops.relu(self.fc1(flat) + self.rec1(h1))
        h2 = ops.relu(self.fc2(h1) + self.rec2(h2))
        y = ops.reshape(self.to_grid(h2), (-1, self.grid[0], self.grid[1], x.shape[-1]))
        for i, block in enumerate(self.decoder):
            if self.skips:
                y = ops.concatenate([y, features[-1 - i]], axis=-1)
            y = crop_like(block(y, training=training), features[-2 - i])
        if self.skips:
            y = ops.concatenate([y, inputs], axis=-1)
        return self.head(y), [h1, h2]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units)), ops.zeros((batch_size, self.units))]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "filters": self.filters,
                "skips": self.skips, "output_activation": self.output_activation,
                "decoder_norm": self.decoder_norm}
