"""decompnet_tf.engine.optimizers: the stage's rate schedule against its closed form, and the
weights' moving average swapped in at the end of fit."""

import math

import keras
import numpy as np
import pytest

from decompnet_tf.config import TrainConfig
from decompnet_tf.engine.optimizers import learning_rate, make_optimizer


def test_cosine_warms_up_linearly_then_decays_to_zero():
    train = TrainConfig(lr_schedule="cosine", warmup_steps=10)
    rate = learning_rate(train, 0.002, 110)
    expected = {0: 0.0, 5: 0.001, 10: 0.002, 60: 0.001, 110: 0.0, 35: 0.002 * 0.5 * (
        1 + math.cos(math.pi * 25 / 100))}
    for step, want in expected.items():
        assert float(rate(step)) == pytest.approx(want, abs=1e-9), step
    # Without warm-up the curve starts at the rate; more warm-up steps than steps is clipped.
    assert float(learning_rate(TrainConfig(lr_schedule="cosine"), 0.002, 10)(0)) == pytest.approx(
        0.002)
    short = learning_rate(TrainConfig(lr_schedule="cosine", warmup_steps=50), 0.002, 4)
    assert float(short(3)) == pytest.approx(0.002)


def test_exponential_keeps_the_rate_for_the_callback_and_cosine_needs_the_steps():
    assert learning_rate(TrainConfig(), 0.01, 100) == 0.01
    assert float(make_optimizer(TrainConfig(), 0.01).learning_rate) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="step count"):
        make_optimizer(TrainConfig(lr_schedule="cosine"), 0.01)


def test_fit_ends_on_the_moving_average_of_the_steps_weights():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((32, 3), np.float32)
    y = x.sum(1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    train = TrainConfig(optimizer="sgd", ema_momentum=0.5, clipnorm=0.0)
    model.compile(make_optimizer(train, 0.1), "mse")
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(
        [v.numpy().copy() for v in model.trainable_variables]))
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[record])
    average = seen[0]  # Keras starts the average at the first step's weights.
    for weights in seen[1:]:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights)]
    final = [v.numpy() for v in model.trainable_variables]
    for a, f, last in zip(average, final, seen[-1]):
        np.testing.assert_allclose(f, a, atol=1e-6)
        assert np.abs(f - last).max() > 1e-3  # not the last step's weights
