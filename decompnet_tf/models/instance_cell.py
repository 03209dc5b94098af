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

`gated=True` (not in the paper; issue 5 measures it) makes each instance map a selection from
the response map it decomposes: map = sigmoid(head) * clip(input, 0, 1). The cell then only
decides which pixels of the category map belong to this step's object; it no longer has to
redraw their intensity, and a map cannot light up where the category map is dark.

`recurrence` picks the bottleneck (section 5 names the last two as future work for images with
many objects):
- "rnn": the paper's two fully connected relu RNN layers (above); states [h1, h2].
- "lstm": two fully connected LSTM layers of `units` (gates i, f, o, candidate g; forget bias
  +1); states [h1, c1, h2, c2].
- "convlstm": two 3x3 convolutional LSTM layers of `units` channels on the bottleneck grid
  (e.g. 7x7), which keep the spatial layout the fully connected layers flatten away; states
  are the flattened [grid_h * grid_w * units] maps [h1, c1, h2, c2]. A 1x1 convolution maps
  h2 back to the decoder's channels.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from decompnet_tf.models.layers import ConvBlock, crop_like

ENCODER = ((32, 5, 2), (32, 3, 2), (32, 3, 2))  # (filters, kernel, stride), Appendix B.
DECODER_KERNELS = (3, 3, 5)
RECURRENCES = ("rnn", "lstm", "convlstm")


def lstm_update(gates, c):
    """One LSTM update from pre-activation gates [..., 4n] (i, f, g, o) and cell c [..., n]."""
    i, f, g, o = ops.split(gates, 4, axis=-1)
    c = ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


@keras.saving.register_keras_serializable(package="decompnet_tf")
class InstanceCell(layers.Layer):
    """A Keras RNN cell: response map in, one instance map out.

    Call: (inputs [batch, h, w, 1], states) -> (instance map [batch, h, w, 1], states), with
    states [h1, h2] ("rnn", each [batch, units]) or [h1, c1, h2, c2] ("lstm": [batch, units];
    "convlstm": [batch, grid_h * grid_w * units]). `top_state(states)` is h2, what a stop head
    reads.
    Usable in `keras.layers.RNN(cell, return_sequences=True)` over inputs [batch, T, h, w, 1],
    or in an explicit loop of T steps (as `DecompNet` does, which unrolls cleanly for TFLite).
    """

    def __init__(self, units: int = 2048, filters: int = 32, skips: bool = False,
                 output_activation: str = "sigmoid", decoder_norm: bool = False,
                 recurrence: str = "rnn", gated: bool = False, **kwargs):
        super().__init__(**kwargs)
        if recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {recurrence!r}")
        self.units = units
        self.filters = filters
        self.skips = skips
        self.output_activation = output_activation
        self.decoder_norm = decoder_norm
        self.recurrence = recurrence
        self.gated = gated
        self.state_size = [units, units] if recurrence == "rnn" else [units] * 4

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
        self._build_recurrence(shape)
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
        activation = "sigmoid" if self.gated else self.output_activation
        self.head = layers.Conv2DTranspose(1, 1, 1, activation=activation, name="head")
        self.head.build((None, None, None, in_ch))
        super().build(input_shape)

    def _build_recurrence(self, shape):
        """The recurrent bottleneck on the encoder's output shape (None, gh, gw, ch)."""
        gh, gw, ch = shape[1], shape[2], shape[3]
        n, gates = self.units, self.units * (1 if self.recurrence == "rnn" else 4)
        if self.recurrence == "convlstm":
            self.state_size = [gh * gw * n] * 4  # Flattened maps (the state-size contract).
            self.fc1 = layers.Conv2D(gates, 3, padding="same", name="rnn_fc1")
            self.rec1 = layers.Conv2D(gates, 3, padding="same", use_bias=False,
                                      name="rnn_fc1_recurrent")
            self.fc2 = layers.Conv2D(gates, 3, padding="same", name="rnn_fc2")
            self.rec2 = layers.Conv2D(gates, 3, padding="same", use_bias=False,
                                      name="rnn_fc2_recurrent")
            self.to_grid = layers.Conv2D(ch, 1, activation="relu", name="to_grid")
            for conv, c_in in ((self.fc1, ch), (self.rec1, n), (self.fc2, n), (self.rec2, n),
                               (self.to_grid, n)):
                conv.build((None, gh, gw, c_in))
            return
        flat = gh * gw * ch
        self.fc1 = layers.Dense(gates, name="rnn_fc1")
        self.rec1 = layers.Dense(gates, use_bias=False, name="rnn_fc1_recurrent",
                                 kernel_initializer="orthogonal")
        self.fc2 = layers.Dense(gates, name="rnn_fc2")
        self.rec2 = layers.Dense(gates, use_bias=False, name="rnn_fc2_recurrent",
                                 kernel_initializer="orthogonal")
        self.to_grid = layers.Dense(flat, activation="relu", name="to_grid")
        for dense, n_in in ((self.fc1, flat), (self.rec1, n), (self.fc2, n), (self.rec2, n),
                            (self.to_grid, n)):
            dense.build((None, n_in))

    def _recur(self, x, states):
        """Bottleneck step: encoder output [B, gh, gw, ch] -> (decoder input, new states)."""
        gh, gw, ch = self.grid[0], self.grid[1], x.shape[-1]
        if self.recurrence == "rnn":
            h1 = ops.relu(self.fc1(ops.reshape(x, (-1, gh * gw * ch))) + self.rec1(states[0]))
            h2 = ops.relu(self.fc2(h1) + self.rec2(states[1]))
            return ops.reshape(self.to_grid(h2), (-1, gh, gw, ch)), [h1, h2]
        if self.recurrence == "lstm":
            h1, c1 = lstm_update(self.fc1(ops.reshape(x, (-1, gh * gw * ch)))
                                 + self.rec1(states[0]), states[1])
            h2, c2 = lstm_update(self.fc2(h1) + self.rec2(states[2]), states[3])
            return ops.reshape(self.to_grid(h2), (-1, gh, gw, ch)), [h1, c1, h2, c2]
        grid = lambda s: ops.reshape(s, (-1, gh, gw, self.units))  # noqa: E731
        h1, c1 = lstm_update(self.fc1(x) + self.rec1(grid(states[0])), grid(states[1]))
        h2, c2 = lstm_update(self.fc2(h1) + self.rec2(grid(states[2])), grid(states[3]))
        flat = lambda s: ops.reshape(s, (-1, gh * gw * self.units))  # noqa: E731
        return self.to_grid(h2), [flat(h1), flat(c1), flat(h2), flat(c2)]

    def top_state(self, states):
        """The top recurrent layer's output h2 [batch, state size] (what a stop head reads)."""
        return states[1] if self.recurrence == "rnn" else states[2]

    def call(self, inputs, states, training=None):
        features, x = [inputs], inputs
        for block in self.encoder:
            x = block(x, training=training)
            features.append(x)
        y, states = self._recur(x, states)
        for i, block in enumerate(self.decoder):
            if self.skips:
                y = ops.concatenate([y, features[-1 - i]], axis=-1)
            y = crop_like(block(y, training=training), features[-2 - i])
        if self.skips:
            y = ops.concatenate([y, inputs], axis=-1)
        out = self.head(y)
        if self.gated:  # A selection from the (non-negative part of the) response map.
            out = out * ops.clip(inputs, 0.0, 1.0)
        return out, states

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size)) for size in self.state_size]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "filters": self.filters,
                "skips": self.skips, "output_activation": self.output_activation,
                "decoder_norm": self.decoder_norm, "recurrence": self.recurrence,
                "gated": self.gated}
