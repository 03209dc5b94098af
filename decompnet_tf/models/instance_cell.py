"""InstanceCell: one step of the instance decomposition network (section 2.2, Fig. 2, App. B).

    conv(1,32,5,2)-conv(32,32,3,2)-conv(32,32,3,2)-rnn-fc(2048)-rnn-fc(2048)
    -deconv(32,32,3,2)-deconv(32,32,3,2)-deconv(32,32,5,2)-deconv(32,1,1,1)

Appendix B prints the deconvolutions with stride 1, which cannot bring the 7x7 bottleneck back
to the 50x50 map; we read them as stride 2 and crop each to the encoder map of its size. Every
step sees the same input, so `encode` runs once per category map and `step` T times on it.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from decompnet_tf.config import DECODERS, RECURRENCES
from decompnet_tf.models.layers import ConvBlock, area_resize, crop_like

ENCODER = ((32, 5, 2), (32, 3, 2), (32, 3, 2))  # (filters, kernel, stride), Appendix B.
DECODER_KERNELS = (3, 3, 5)
DYNAMIC_HIDDEN = 8  # Hidden units of the dynamic per-pixel network.


def lstm_update(gates, c):
    """One LSTM update from pre-activation gates [..., 4n] (i, f, g, o) and cell c [..., n]."""
    i, f, g, o = ops.split(gates, 4, axis=-1)
    c = ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


@keras.saving.register_keras_serializable(package="decompnet_tf")
class InstanceCell(layers.Layer):
    """A Keras RNN cell: response map in, one instance map out.

    Call: (inputs [B, h, w, C], states) -> (instance map [B, h, w, 1], states); channel 0 is the
    response map to decompose, any others are context. `DecompNet` loops over the steps itself.

    Args:
        units: size of each recurrent layer (channels for "convlstm").
        decoder_norm: batch norm after the decoder's convolutions too (Appendix B). Off by default:
            decoder activations differ from step to step, so shared moving statistics fit none.
        recurrence: "rnn" (the paper's; states [h1, h2]), or section 5's future work, "lstm" or
            "convlstm" (3x3 convolutional LSTMs on the bottleneck grid), states [h1, c1, h2, c2].
        skips: feed the encoder maps to the decoder's (not in the paper), so the bottleneck only
            has to pick the blob, not redraw its shape.
        gated: map = sigmoid(head) * clip(input, 0, 1) (not in the paper): the cell selects pixels
            of the category map rather than redrawing them.
        decoder: "deconv" (the paper's) or "dynamic": per-pixel embeddings decoded once per map,
            and per-step weights of a tiny per-pixel network (CondInst, Tian et al. 2020).
        canvas: add the sum of the maps emitted so far to the state ("dynamic" only; after Ren &
            Zemel 2017), so a step sees what is explained without a hard subtraction.
    """

    def __init__(self, units: int = 2048, filters: int = 32, skips: bool = False,
                 output_activation: str = "sigmoid", decoder_norm: bool = False,
                 recurrence: str = "rnn", gated: bool = False, decoder: str = "deconv",
                 canvas: bool = False, **kwargs):
        super().__init__(**kwargs)
        if recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {recurrence!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if canvas and decoder != "dynamic":
            raise ValueError("canvas=True needs decoder='dynamic' (the deconv decoder would have "
                             "to run its encoder again at every step)")
        self.units = units
        self.filters = filters
        self.skips = skips
        self.output_activation = output_activation
        self.decoder_norm = decoder_norm
        self.recurrence = recurrence
        self.gated = gated
        self.decoder_kind = decoder
        self.canvas = canvas
        self.state_size = [units, units] if recurrence == "rnn" else [units] * 4

    def build(self, input_shape):
        h, w = input_shape[-3], input_shape[-2]
        if h is None or w is None:
            raise ValueError(f"InstanceCell needs a static map size, got input {input_shape}")
        shape = (None, h, w, input_shape[-1])
        self.encoder, enc_shapes = [], [shape]
        for i, (f, k, s) in enumerate(ENCODER):
            # Momentum 0.9: the encoder runs once per training step, not once per recurrent
            # step, so its moving statistics get one update per batch and must still settle in
            # short runs (0.9 is about what 0.99 gives over T = 11 updates: 0.99 ** 11 ~ 0.9).
            block = ConvBlock(f, k, s, momentum=0.9, name=f"conv{i + 1}")
            block.build(shape)
            shape = block.compute_output_shape(shape)
            self.encoder.append(block)
            enc_shapes.append(shape)
        self.grid = shape[1:3]
        self._build_recurrence(shape[:3] + (shape[3] + int(self.canvas),))
        if self.canvas:
            self.state_size = self.state_size + [h * w]  # The canvas, flattened.
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
        if self.decoder_kind == "dynamic":
            # Step state h2 -> the weights of (filters + 2) -> DYNAMIC_HIDDEN -> 1.
            self.embedding = layers.Conv2D(self.filters, 1, name="embedding")
            self.embedding.build((None, None, None, in_ch))
            n_in = self.filters + 2 + int(self.canvas)  # Embeddings, y, x (, canvas).
            self.dynamic = layers.Dense((n_in + 2) * DYNAMIC_HIDDEN + 1, name="dynamic_head")
            self.dynamic.build((None, self.top_state_size))
        else:  # Linear: `step` applies the activation (or the gate) itself.
            self.head = layers.Conv2DTranspose(1, 1, 1, name="head")
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
            layer_inputs = [(self.fc1, ch), (self.rec1, n), (self.fc2, n), (self.rec2, n)]
            if self.decoder_kind == "deconv":  # The dynamic decoder reads h2 as it is.
                self.to_grid = layers.Conv2D(ch, 1, activation="relu", name="to_grid")
                layer_inputs.append((self.to_grid, n))
            for conv, c_in in layer_inputs:
                conv.build((None, gh, gw, c_in))
            return
        flat = gh * gw * ch
        self.fc1 = layers.Dense(gates, name="rnn_fc1")
        self.rec1 = layers.Dense(gates, use_bias=False, name="rnn_fc1_recurrent",
                                 kernel_initializer="orthogonal")
        self.fc2 = layers.Dense(gates, name="rnn_fc2")
        self.rec2 = layers.Dense(gates, use_bias=False, name="rnn_fc2_recurrent",
                                 kernel_initializer="orthogonal")
        layer_inputs = [(self.fc1, flat), (self.rec1, n), (self.fc2, n), (self.rec2, n)]
        if self.decoder_kind == "deconv":  # The dynamic decoder reads h2 as it is.
            self.to_grid = layers.Dense(flat, activation="relu", name="to_grid")
            layer_inputs.append((self.to_grid, n))
        for dense, n_in in layer_inputs:
            dense.build((None, n_in))

    def _project(self, x):
        """The first recurrent layer's input term fc1(x) of the bottleneck [B, gh, gw, ch]."""
        if self.recurrence == "convlstm":
            return self.fc1(x)
        return self.fc1(ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3])))

    def _recur(self, projected, states):
        """Bottleneck step from `_project`'s term -> new states (without the canvas)."""
        gh, gw = self.grid
        if self.recurrence == "rnn":
            h1 = ops.relu(projected + self.rec1(states[0]))
            # fc2's bias after the sum: oneDNN's Grappler remapper turns MatMul, BiasAdd, Add,
            # Relu into a node without an op, and Grappler then drops the whole graph's passes.
            z = ops.matmul(h1, ops.cast(self.fc2.kernel, h1.dtype)) + self.rec2(states[1])
            return [h1, ops.relu(z + ops.cast(self.fc2.bias, z.dtype))]
        if self.recurrence == "lstm":
            h1, c1 = lstm_update(projected + self.rec1(states[0]), states[1])
            h2, c2 = lstm_update(self.fc2(h1) + self.rec2(states[2]), states[3])
            return [h1, c1, h2, c2]

        def grid(s):
            return ops.reshape(s, (-1, gh, gw, self.units))

        def flat(s):
            return ops.reshape(s, (-1, gh * gw * self.units))

        h1, c1 = lstm_update(projected + self.rec1(grid(states[0])), grid(states[1]))
        h2, c2 = lstm_update(self.fc2(h1) + self.rec2(grid(states[2])), grid(states[3]))
        return [flat(h1), flat(c1), flat(h2), flat(c2)]

    def _to_grid(self, states, channels: int):
        """h2 on the bottleneck grid [B, gh, gw, channels]: the deconv decoder's input."""
        gh, gw = self.grid
        h2 = self.top_state(states)
        if self.recurrence == "convlstm":
            return self.to_grid(ops.reshape(h2, (-1, gh, gw, self.units)))
        return ops.reshape(self.to_grid(h2), (-1, gh, gw, channels))

    @property
    def top_state_size(self) -> int:
        """The size of `top_state`: h2, flattened for the convolutional LSTM."""
        return self.state_size[1] if self.recurrence == "rnn" else self.state_size[2]

    def top_state(self, states):
        """The top recurrent layer's output h2 [B, state size] (what a stop head reads)."""
        return states[1] if self.recurrence == "rnn" else states[2]

    def encode(self, inputs, training=None) -> dict:
        """What does not change from step to step, computed once per category map.

        inputs [B, h, w, 1] -> {"inputs", "features" (the encoder maps), "projected" (fc1 of the
        bottleneck, unless the canvas changes it per step) and for the dynamic decoder
        "embedding" [B, h, w, filters + 2] (embeddings, then y, x in [-1, 1])}.
        """
        features, x = [], inputs
        for block in self.encoder:
            x = block(x, training=training)
            features.append(x)
        encoded = {"inputs": inputs, "features": features}
        if not self.canvas:  # fc1 of an input every step shares: once, not T times.
            encoded["projected"] = self._project(x)
        if self.decoder_kind == "dynamic":
            y = self._decode(features[-1], encoded, training)
            encoded["embedding"] = ops.concatenate(
                [self.embedding(y), _coordinates(inputs)], axis=-1)
        return encoded

    def _decode(self, y, encoded, training):
        """The deconvolutions (with skips) from the bottleneck grid back to the input's size."""
        features, inputs = encoded["features"], encoded["inputs"]
        for i, block in enumerate(self.decoder):
            if self.skips:
                y = ops.concatenate([y, features[-1 - i]], axis=-1)
            y = crop_like(block(y, training=training), ([inputs] + features)[-2 - i])
        return ops.concatenate([y, inputs], axis=-1) if self.skips else y

    def step(self, encoded, states, training=None, return_logits: bool = False):
        """One recurrent step on `encode`'s output -> (instance map [B, h, w, 1], states).

        `return_logits` returns the pre-activation map, for a gate applied at another resolution.
        """
        inputs, bottleneck = encoded["inputs"], encoded["features"][-1]
        embedding = encoded.get("embedding")
        if self.canvas:
            h, w = inputs.shape[1], inputs.shape[2]
            canvas = ops.reshape(states[-1], (-1, h, w, 1))
            pooled = area_resize(canvas, self.grid)
            bottleneck = ops.concatenate([bottleneck, pooled], axis=-1)
            embedding = ops.concatenate([embedding, canvas], axis=-1)
            states = states[:-1]
        projected = encoded.get("projected")
        states = self._recur(self._project(bottleneck) if projected is None else projected,
                             states)
        if self.decoder_kind == "dynamic":
            logits = _dynamic_head(embedding, self.dynamic(self.top_state(states)))
        else:
            y = self._to_grid(states, bottleneck.shape[-1])
            logits = self.head(self._decode(y, encoded, training))
        if self.gated:  # A selection from the (non-negative part of the) response map.
            out = ops.sigmoid(logits) * ops.clip(inputs[..., :1], 0.0, 1.0)
        else:
            out = ops.sigmoid(logits) if self.output_activation == "sigmoid" else logits
        if self.canvas:  # What is explained so far: the emitted maps, in [0, 1].
            drawn = ops.stop_gradient(ops.clip(out, 0.0, 1.0))
            states = states + [ops.reshape(canvas + drawn, (-1, h * w))]
        return (logits if return_logits else out), states

    def call(self, inputs, states, training=None):
        return self.step(self.encode(inputs, training=training), states, training=training)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size)) for size in self.state_size]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "filters": self.filters,
                "skips": self.skips, "output_activation": self.output_activation,
                "decoder_norm": self.decoder_norm, "recurrence": self.recurrence,
                "gated": self.gated, "decoder": self.decoder_kind, "canvas": self.canvas}


def _coordinates(x):
    """[B, h, w, C] -> [B, h, w, 2]: each pixel centre's (y, x) in [-1, 1]."""
    h, w = x.shape[1], x.shape[2]
    ys = (ops.arange(h, dtype="float32") + 0.5) / h * 2.0 - 1.0
    xs = (ops.arange(w, dtype="float32") + 0.5) / w * 2.0 - 1.0
    grid = ops.stack(ops.meshgrid(ys, xs, indexing="ij"), axis=-1)  # [h, w, 2]
    return ops.zeros_like(x[..., :1]) + ops.cast(grid[None], x.dtype)


def _dynamic_head(embedding, params):
    """Per-pixel network: embedding [B, h, w, n], per-map params [B, (n + 2) * k + 1] -> logits."""
    n, k = embedding.shape[-1], DYNAMIC_HIDDEN
    params = ops.cast(params, embedding.dtype)
    w1 = ops.reshape(params[:, : n * k], (-1, n, k))
    b1 = params[:, n * k : n * k + k]
    w2 = params[:, n * k + k : n * k + 2 * k]
    b2 = params[:, n * k + 2 * k :]
    hidden = ops.relu(ops.einsum("bhwn,bnk->bhwk", embedding, w1) + b1[:, None, None, :])
    return ops.einsum("bhwk,bk->bhw", hidden, w2)[..., None] + b2[:, None, None, :]
