"""DecompNet's stop head reading what the earlier steps left of the category map
(`stop_input="state_residual"`)."""

import numpy as np
import pytest

from decompnet_tf.config import ModelConfig
from decompnet_tf.models.decompnet import DecompNet

TINY = dict(num_classes=2, steps=4, image_size=(32, 32), instance_units=16, instance_filters=8,
            box_hidden=16, box_dropout=0.0, stop_head=True, stop_input="state_residual",
            instance_pool=1, instance_gated=True)


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 32, 32, 1), dtype=np.float32)


@pytest.mark.parametrize("fine", [False, True])
def test_stop_head_reads_the_unexplained_category_map(fine):
    # With the state's weights zeroed, the stop head sees only the two masses, so its output
    # must equal a sigmoid of them recomputed here from the network's own maps.
    net = DecompNet(ModelConfig(**{**TINY, "instance_fine": fine,
                                   "instance_pool": 2 if fine else 1}))
    out = net(_images(2))
    kernel, bias = net.objectness.get_weights()
    assert kernel.shape == (net.cell.top_state_size + 2, 1)
    kernel[:-2] = 0.0
    kernel[-2:, 0] = (0.7, -0.4)
    net.objectness.set_weights([kernel, bias])
    out = net(_images(2))
    maps = np.clip(np.asarray(out["instance_maps"]), 0, None)  # [B, C, T, h, w]
    left = np.clip(np.transpose(np.asarray(out["category_maps"]), (0, 3, 1, 2)), 0, None)
    want = []
    for t in range(TINY["steps"]):
        z = 0.7 * np.log1p(left.sum((-2, -1))) - 0.4 * np.log1p(maps[:, :, t].sum((-2, -1)))
        want.append(1 / (1 + np.exp(-(z + bias[0]))))
        left = np.maximum(left - maps[:, :, t], 0)
    np.testing.assert_allclose(np.asarray(out["objectness"]), np.stack(want, -1), rtol=1e-4,
                               atol=1e-6)


def test_the_default_stop_head_reads_the_state_only():
    net = DecompNet(ModelConfig(**{**TINY, "stop_input": "state"}))
    net(_images(1))
    assert net.objectness.get_weights()[0].shape == (net.cell.top_state_size, 1)
    with pytest.raises(ValueError, match="stop_input"):
        ModelConfig(**{**TINY, "stop_input": "residual"})
