"""Networks of section 2 / Appendix B: shapes, configs, serialisation, bad input."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from decompnet_tf.config import ModelConfig
from decompnet_tf.models.box_regressor import BoxRegressor
from decompnet_tf.models.category_net import CategoryNet
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.models.instance_cell import InstanceCell
from tests.helpers import ROOT

TINY = dict(num_classes=3, steps=3, image_size=(32, 32), instance_units=16, instance_filters=8,
            instance_decoder_norm=True, instance_activation="linear",
            box_hidden=16, category_skips=True, instance_skips=True)


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).random((n, h, w, 1), dtype=np.float32)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("skips", [False, True])
@pytest.mark.parametrize("hw", [(100, 100), (96, 312), (37, 41)])
def test_category_net_output_size(full, skips, hw):
    net = CategoryNet(num_classes=3, full_resolution=full, skips=skips)
    out = net(_images(1, *hw))["category_maps"]
    expect = hw if full else (-(-hw[0] // 2), -(-hw[1] // 2))
    assert tuple(out.shape) == (1, *expect, 3)


def test_category_net_paper_layers():
    net = CategoryNet()
    net.build((None, 100, 100, 1))
    convs = [(b.filters, b.kernel_size, b.strides) for b in net.encoder]
    assert convs == [(32, 5, 2), (32, 5, 2), (64, 3, 2), (64, 3, 1), (64, 3, 2), (64, 3, 1)]
    assert [(b.filters, b.kernel_size, b.strides) for b in net.decoder] == [(64, 3, 2)] * 3
    assert net.head.filters == 3 and net.head.kernel_size == (1, 1)


def test_instance_cell_in_keras_rnn_and_loop_agree():
    cell = InstanceCell(units=8, filters=4, skips=True)
    seq = np.repeat(_images(2, 20, 20)[:, None], 3, axis=1)  # [B, T, h, w, 1]
    rnn_out = keras.layers.RNN(cell, return_sequences=True)(seq)
    assert tuple(rnn_out.shape) == (2, 3, 20, 20, 1)
    states = cell.get_initial_state(2)
    for t in range(3):
        out, states = cell(seq[:, t], states)
        np.testing.assert_allclose(out.numpy(), rnn_out[:, t].numpy(), atol=1e-5)
    assert cell.state_size == [8, 8]


@pytest.mark.parametrize(
    "layer, kwargs",
    [(InstanceCell, dict(units=8, filters=4, skips=True, output_activation="linear",
                         decoder_norm=True)),
     (InstanceCell, dict(units=5, filters=3, recurrence="convlstm", gated=True)),
     (BoxRegressor, dict(hidden=7, dropout=0.25)),
     (InstanceCell, dict(units=5, filters=3, decoder="dynamic", gated=True)),
     (InstanceCell, dict(units=5, filters=3, decoder="dynamic", canvas=True,
                         recurrence="lstm")),
     (CategoryNet, dict(num_classes=2, full_resolution=True, skips=True, decoder_filters=8)),
     (CategoryNet, dict(num_classes=2, center_head=True)),
     (DecompNet, dict(config=ModelConfig(**TINY))),
     (DecompNet, dict(config=ModelConfig(**{
         **TINY, "stop_head": True, "instance_recurrence": "lstm", "instance_gated": True,
         "instance_pool": 2, "instance_fine": True, "instance_decoder": "dynamic",
         "instance_canvas": True})))],
)
def test_get_config_mirrors_constructor(layer, kwargs):
    config = layer(**kwargs).get_config()
    for key, value in kwargs.items():
        if isinstance(value, ModelConfig):  # DecompNet stores its one argument as a dict.
            assert config[key] == dataclasses.asdict(value), key
            assert ModelConfig(**config[key]) == value
        else:
            assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    rebuilt = layer.from_config(config)
    assert rebuilt.get_config() == config


def test_decompnet_shapes_both_resolutions():
    for full, hw in ((False, (16, 16)), (True, (32, 32))):
        net = DecompNet(ModelConfig(**{**TINY, "full_resolution": full}))
        out = net(_images(2, 32, 32))
        assert tuple(out["category_maps"].shape) == (2, *hw, 3)
        assert tuple(out["instance_maps"].shape) == (2, 3, 3, *hw)
        assert tuple(out["peaks"].shape) == (2, 3, 3)
        # Scores are postprocessing's (decompnet_tf.postprocess.with_scores), not the net's.
        assert "detection_scores" not in out and "segmentation_scores" not in out
        boxes = out["boxes"].numpy()
        assert boxes.shape == (2, 3, 3, 4)
        assert (boxes[..., 2] >= boxes[..., 0]).all() and (boxes[..., 3] >= boxes[..., 1]).all()


def test_saved_and_reloaded_model_gives_identical_outputs(tmp_path):
    net = DecompNet(ModelConfig(**TINY))
    x = _images(2, 32, 32)
    before = net(x, training=False)
    path = str(tmp_path / "m.keras")
    net.save(path)
    loaded = keras.models.load_model(path)
    after = loaded(x, training=False)
    for key in before:
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())


@pytest.mark.parametrize("shape, match", [((2, 32, 32, 3), r"got \[2, 32, 32, 3\]"),
                                          ((2, 30, 32, 1), r"got \[2, 30, 32, 1\]"),
                                          ((0, 32, 32, 1), "empty batch")])
def test_bad_images_are_clear_errors(shape, match):
    net = DecompNet(ModelConfig(**TINY))
    with pytest.raises(ValueError, match=match):
        net(np.zeros(shape, np.float32))


@pytest.mark.parametrize("recurrence, state", [("lstm", [6] * 4), ("convlstm", [3 * 3 * 6] * 4)])
def test_instance_cell_lstm_variants_state_and_rnn_agreement(recurrence, state):
    cell = InstanceCell(units=6, filters=4, recurrence=recurrence)
    seq = np.repeat(_images(2, 20, 20)[:, None], 3, axis=1)
    rnn_out = keras.layers.RNN(cell, return_sequences=True)(seq)
    assert cell.state_size == state
    states = cell.get_initial_state(2)
    for t in range(3):
        out, states = cell(seq[:, t], states)
        np.testing.assert_allclose(out.numpy(), rnn_out[:, t].numpy(), atol=1e-5)
    # The state carries memory: the same input gives a different map at step 2 than at step 1.
    first, s1 = cell(seq[:, 0], cell.get_initial_state(2))
    second, _ = cell(seq[:, 0], s1)
    assert np.abs(first.numpy() - second.numpy()).max() > 1e-6
    assert cell.get_config()["recurrence"] == recurrence


def test_lstm_recurrence_equals_two_stacked_keras_lstm_cells():
    """An independent reference: keras.layers.LSTMCell (gates i, f, c, o; sigmoid, tanh) with
    the cell's weights, its forget bias raised by the +1 the cell adds in the update."""
    n = 6
    cell = InstanceCell(units=n, filters=4, recurrence="lstm")
    cell.build((None, 20, 20, 1))
    rng = np.random.default_rng(0)
    (gh, gw), ch = cell.grid, 32
    x = rng.normal(size=(2, gh, gw, ch)).astype(np.float32)
    states = [rng.normal(size=(2, n)).astype(np.float32) for _ in range(4)]
    got = [s.numpy() for s in cell._recur(cell._project(x), states)]
    forget_one = np.concatenate([np.zeros(n), np.ones(n), np.zeros(2 * n)]).astype(np.float32)
    ref_input = x.reshape(2, -1)
    for layer, (fc, rec) in enumerate([(cell.fc1, cell.rec1), (cell.fc2, cell.rec2)]):
        keras_cell = keras.layers.LSTMCell(n)
        keras_cell.build((None, ref_input.shape[-1]))
        keras_cell.set_weights([fc.kernel.numpy(), rec.kernel.numpy(),
                                fc.bias.numpy() + forget_one])
        h, (_, c) = keras_cell(ref_input, [states[2 * layer], states[2 * layer + 1]])
        np.testing.assert_allclose(got[2 * layer], h.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[2 * layer + 1], c.numpy(), rtol=1e-5, atol=1e-5)
        ref_input = h.numpy()


def test_unknown_recurrence_is_a_clear_error():
    with pytest.raises(ValueError, match="recurrence must be one of"):
        InstanceCell(recurrence="gru")


def test_stop_head_outputs_objectness():
    net = DecompNet(ModelConfig(**{**TINY, "stop_head": True, "instance_recurrence": "lstm"}))
    obj = net(_images(2, 32, 32))["objectness"].numpy()
    assert obj.shape == (2, 3, 3) and ((obj > 0) & (obj < 1)).all()
    assert "objectness" not in DecompNet(ModelConfig(**TINY))(_images(1, 32, 32))


def test_gated_cell_selects_from_its_input():
    cell = InstanceCell(units=6, filters=4, gated=True, output_activation="linear")
    x = _images(2, 20, 20) * 3.0 - 1.0  # Values in [-1, 2]: clipped to [0, 1] by the gate.
    out, _ = cell(x, cell.get_initial_state(2))
    out, x = out.numpy(), np.asarray(x)
    assert (out >= 0).all() and (out <= np.clip(x, 0, 1) + 1e-6).all()
    assert (out[x <= 0] == 0).all() and out.max() > 0
    assert cell.get_config()["gated"] is True


@pytest.mark.parametrize("decoder, canvas", [("deconv", False), ("dynamic", False),
                                             ("dynamic", True)])
def test_decompose_encodes_once_and_equals_the_cell_called_per_step(decoder, canvas):
    net = DecompNet(ModelConfig(**{**TINY, "instance_decoder": decoder, "stop_head": True,
                                   "instance_canvas": canvas}))
    x = _images(2, 32, 32)
    out = net(x, training=False)
    # The Keras RNN contract (encoder + step at every step) gives the same maps.
    maps = np.transpose(out["category_maps"].numpy(), (0, 3, 1, 2)).reshape(-1, 16, 16, 1)
    states = net.cell.get_initial_state(6)
    assert out["objectness"].shape == (2, 3, 3)
    for t in range(3):
        step, states = net.cell(maps, states, training=False)
        np.testing.assert_allclose(step.numpy().reshape(2, 3, 16, 16),
                                   out["instance_maps"][:, :, t].numpy(), atol=1e-5)


def test_fine_instance_maps_gate_the_category_maps_at_their_resolution():
    cfg = ModelConfig(**{**TINY, "instance_gated": True, "instance_pool": 2,
                         "instance_fine": True, "instance_decoder": "dynamic"})
    net = DecompNet(cfg)
    out = net(_images(2, 32, 32))
    assert net.pooled_size == (8, 8) and net.instance_size == net.map_size == (16, 16)
    maps = out["instance_maps"].numpy()
    assert maps.shape == (2, 3, 3, 16, 16)
    cat = np.clip(np.transpose(out["category_maps"].numpy(), (0, 3, 1, 2)), 0, 1)
    assert (maps >= 0).all() and (maps <= cat[:, :, None] + 1e-6).all()
    assert (maps[np.broadcast_to(cat[:, :, None] == 0, maps.shape)] == 0).all()
    with pytest.raises(ValueError, match="needs instance_gated"):
        ModelConfig(instance_fine=True)


def test_dynamic_head_is_a_per_pixel_network_with_per_map_weights():
    """CondInst's dynamic head: each map's own small network, applied to every pixel's
    embedding alone (no spatial mixing)."""
    from decompnet_tf.models.instance_cell import DYNAMIC_HIDDEN, _dynamic_head

    rng = np.random.default_rng(0)
    n = 5
    size = (n + 2) * DYNAMIC_HIDDEN + 1  # What the cell's weight generator emits per map.
    emb = rng.normal(size=(2, 3, 4, n)).astype(np.float32)
    params = rng.normal(size=(2, size)).astype(np.float32)
    out = _dynamic_head(emb, params).numpy()
    assert out.shape == (2, 3, 4, 1) and np.isfinite(out).all()
    # All parameters zero: a constant (zero) map whatever the embeddings.
    assert (_dynamic_head(emb, np.zeros_like(params)).numpy() == 0).all()
    # The same embedding at every pixel: the same value at every pixel.
    flat = np.broadcast_to(emb[:, :1, :1], emb.shape).copy()
    const = _dynamic_head(flat, params).numpy()
    np.testing.assert_allclose(const, np.broadcast_to(const[:, :1, :1], const.shape), atol=1e-6)
    # One pixel's embedding changes that pixel's value only.
    moved = emb.copy()
    moved[0, 1, 2] += 1.0
    diff = np.abs(_dynamic_head(moved, params).numpy() - out)[..., 0]
    assert diff[0, 1, 2] > 0 and np.delete(diff.ravel(), 0 * 12 + 1 * 4 + 2).max() == 0
    # One image's parameters change that image's map only.
    for image in (0, 1):
        other = params.copy()
        other[image] = rng.normal(size=size)
        changed = _dynamic_head(emb, other).numpy()
        np.testing.assert_array_equal(changed[1 - image], out[1 - image])
        assert np.abs(changed[image] - out[image]).max() > 1e-3


def test_dynamic_decoder_draws_what_the_state_generated_weights_say():
    """The step's map depends on the recurrent state only through the generated weights: a
    weight generator zeroed out gives the same constant map for any input and state."""
    cell = InstanceCell(units=6, filters=4, decoder="dynamic", output_activation="linear")
    x = _images(2, 20, 20)
    random_state = [np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)] * 2
    out, _ = cell(x, random_state)
    assert out.shape == (2, 20, 20, 1) and out.numpy().std() > 0
    cell.dynamic.set_weights([np.zeros_like(w) for w in cell.dynamic.get_weights()])
    for states in (cell.get_initial_state(2), random_state):
        zeroed, _ = cell(x, states)
        assert (zeroed.numpy() == 0).all()


@pytest.mark.parametrize("recurrence", ["rnn", "convlstm"])
def test_canvas_state_is_the_sum_of_the_emitted_maps(recurrence):
    cell = InstanceCell(units=6, filters=4, gated=True, decoder="dynamic", canvas=True,
                        recurrence=recurrence)
    x = _images(2, 20, 20)
    seq = np.repeat(x[:, None], 3, axis=1)
    rnn_out = keras.layers.RNN(cell, return_sequences=True)(seq)  # The Keras RNN contract.
    assert cell.state_size[-1] == 400
    states = cell.get_initial_state(2)
    total = np.zeros((2, 20, 20, 1), np.float32)
    for t in range(3):
        out, states = cell(x, states)
        np.testing.assert_allclose(out.numpy(), rnn_out[:, t].numpy(), atol=1e-5)
        total += np.clip(out.numpy(), 0, 1)
        np.testing.assert_allclose(states[-1].numpy().reshape(2, 20, 20, 1), total, atol=1e-5)
    with pytest.raises(ValueError, match="needs decoder='dynamic'"):
        InstanceCell(canvas=True)
    with pytest.raises(ValueError, match="needs instance_decoder='dynamic'"):
        ModelConfig(instance_canvas=True)


def test_box_regressor_reads_the_step_state_when_asked():
    net = DecompNet(ModelConfig(**{**TINY, "box_input": "state", "instance_units": 12}))
    out = net(_images(2, 32, 32))
    assert net.box_regressor.fc.kernel.shape[0] == net.cell.top_state_size == 12
    boxes = out["boxes_xywh"].numpy()
    assert boxes.shape == (2, 3, 3, 4) and ((boxes > 0) & (boxes < 1)).all()
    # Different steps (states), different boxes, although every step sees the same map.
    assert np.abs(boxes[:, :, 0] - boxes[:, :, 1]).max() > 1e-6


def test_instance_network_sees_the_image_beside_each_category_map():
    cfg = ModelConfig(**{**TINY, "instance_image": True, "instance_gated": True,
                         "instance_decoder": "dynamic"})
    net = DecompNet(cfg)
    x = _images(2, 32, 32)
    out = net(x)
    assert net.cell.encoder[0].conv.kernel.shape[2] == 2  # Category map + image.
    cat = np.clip(np.transpose(out["category_maps"].numpy(), (0, 3, 1, 2)), 0, 1)
    maps = out["instance_maps"].numpy()
    assert (maps <= cat[:, :, None] + 1e-6).all()  # Still a selection of the category map.
    # The same category maps with another image give other instance maps.
    other = net.decompose(out["category_maps"], images=_images(2, 32, 32, seed=9))
    assert np.abs(other["instance_maps"].numpy() - maps).max() > 1e-6
    with pytest.raises(ValueError, match="needs the images"):
        net.decompose(out["category_maps"])


@pytest.mark.parametrize("recurrence", ["rnn", "lstm", "convlstm"])
def test_the_first_layers_input_term_is_computed_once_with_the_same_values_and_gradients(
        recurrence):
    """`encode` computes fc1 of the bottleneck once for the T steps; recomputing it in every
    step (the canvas's path) gives the same maps and the same gradients."""
    import tensorflow as tf

    cell = InstanceCell(units=8, filters=4, recurrence=recurrence, decoder="dynamic")
    cell.build((None, 16, 16, 1))
    x = tf.constant(_images(3, 16, 16)[..., :1])

    def run(hoisted):
        with tf.GradientTape() as tape:
            encoded = cell.encode(x, training=False)
            assert "projected" in encoded
            if not hoisted:
                encoded = {k: v for k, v in encoded.items() if k != "projected"}
            states, total, maps = cell.get_initial_state(3), 0.0, []
            for _ in range(4):
                out, states = cell.step(encoded, states, training=False)
                maps.append(out)
                total += tf.reduce_sum(out * out)
        return maps, tape.gradient(total, cell.trainable_variables)

    (maps_a, grads_a), (maps_b, grads_b) = run(True), run(False)
    for a, b in zip(maps_a, maps_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert sum(g is not None for g in grads_a) > 5
    for a, b in zip(grads_a, grads_b):
        if a is not None:
            # Float sums in another order (multi-threaded kernels): about 1e-5 apart.
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


GRAPPLER_PROBE = r"""
import numpy as np, tensorflow as tf
from decompnet_tf.config import ModelConfig
from decompnet_tf.models.decompnet import DecompNet

net = DecompNet(ModelConfig(num_classes=2, steps=2, image_size=(32, 32), instance_units=8,
                            instance_filters=4, box_hidden=8))
x = tf.constant(np.random.default_rng(0).random((2, 32, 32, 1), np.float32))
tf.function(lambda x: net(x, training=False))(x)
"""


def test_grappler_optimises_the_network_graph_with_onednn_on():
    """No node of the compiled call lacks an op: oneDNN's remapper makes one out of MatMul,
    BiasAdd, Add and Relu, and Grappler then logs an error and drops all its passes."""
    import subprocess
    import sys

    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    done = subprocess.run([sys.executable, "-c", GRAPPLER_PROBE], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "empty op name" not in done.stderr and "does not specify an operation" not in (
        done.stderr)
