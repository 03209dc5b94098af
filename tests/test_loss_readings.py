"""The two readings of eq. 3 that the paper leaves open, as options: lambda and gamma as the
instance terms' weights or as their D_p floors (`--paper_lambda_gamma`), and the steps beyond
the object count trained toward the empty map or left free (`--unmatched_steps`). Hand-computed
values on 1x2 maps; D(x, y; p) = mean over pixels of (y + p) (x - y)^2."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.config import LossConfig, ModelConfig
from decompnet_tf.engine.trainer import DecompTrainer
from decompnet_tf.losses import (
    instance_floors,
    instance_losses,
    instance_term_weights,
    weighted_total,
)
from decompnet_tf.matching import match
from decompnet_tf.models.decompnet import DecompNet
from tests.test_trainer import TINY, tiny_dataset

# One image, T = 2 steps, one object on the left pixel of a 1x2 map.
GT = tf.constant([[[[1.0, 0.0]]]])  # [B=1, N=1, 1, 2]
PRED = tf.constant([[[[0.5, 0.0]], [[0.0, 0.5]]]])  # [1, T=2, 1, 2]
ASSIGNMENT = tf.constant([[0, -1]])  # Step 0 has the object, step 1 nothing.


def test_floors_and_weights_of_each_reading():
    assert instance_floors("weights", 0.1, 0.3, 0.5) == (0.1, 0.1)
    assert instance_floors("floors", 0.1, 0.3, 0.5) == (0.3, 0.5)
    assert instance_term_weights("weights", 0.3, 0.5) == (0.3, 0.5)
    assert instance_term_weights("floors", 0.3, 0.5) == (1.0, 1.0)
    with pytest.raises(ValueError, match="paper_lambda_gamma"):
        instance_floors("subscripts", 0.1, 0.3, 0.5)
    with pytest.raises(ValueError, match="paper_lambda_gamma"):
        LossConfig(paper_lambda_gamma="subscripts")
    with pytest.raises(ValueError, match="unmatched_steps"):
        LossConfig(unmatched_steps="ignored")


def test_weighted_total_weighs_the_instance_terms_by_the_reading():
    terms = {"category": 1.0, "instance_matched": 2.0, "instance_sum": 3.0, "box": 4.0}
    # weights: 1 + 0.3 * 2 + 0.5 * 3 + 4; floors: every term weighs 1 (eta still 1).
    assert float(weighted_total(terms, 0.3, 0.5, 1.0)) == pytest.approx(7.1)
    assert float(weighted_total(terms, 0.3, 0.5, 1.0, lambda_gamma="floors")) == \
        pytest.approx(10.0)


def test_sum_term_floor():
    # Sum of maps [0.5, 0.5] against [1, 0]: (1 + p) 0.25 and p 0.25, halved.
    same = instance_losses(PRED, GT, ASSIGNMENT, 0.1)["instance_sum"]
    floor = instance_losses(PRED, GT, ASSIGNMENT, 0.1, p_sum=0.5)["instance_sum"]
    assert float(same) == pytest.approx((1.1 * 0.25 + 0.1 * 0.25) / 2)  # 0.15
    assert float(floor) == pytest.approx((1.5 * 0.25 + 0.5 * 0.25) / 2)  # 0.25


def test_unmatched_steps_empty_or_free():
    # Step 0 against its object: 1.1 * 0.25 / 2 = 0.1375; step 1 against the empty map:
    # 0.1 * 0.25 / 2 = 0.0125, counted only by "empty".
    empty = instance_losses(PRED, GT, ASSIGNMENT, 0.1)
    free = instance_losses(PRED, GT, ASSIGNMENT, 0.1, unmatched="free")
    assert float(empty["instance_matched"]) == pytest.approx(0.15)
    assert float(free["instance_matched"]) == pytest.approx(0.1375)
    assert float(free["instance_sum"]) == pytest.approx(float(empty["instance_sum"]))
    with pytest.raises(ValueError, match="unmatched"):
        instance_losses(PRED, GT, ASSIGNMENT, 0.1, unmatched="ignored")


@pytest.mark.parametrize("solver", ["scipy", "graph"])
def test_free_matching_charges_nothing_for_a_step_without_object(solver):
    # a1 = [0.3, 0]: D(a1, y) = 1.1 * 0.49 / 2 = 0.2695, D(a1, 0) = 0.0045.
    # a2 = [1, 3]:   D(a2, y) = 0.1 * 9 / 2 = 0.45,      D(a2, 0) = 0.1 * 10 / 2 = 0.5.
    # Charging the empty step: a1 gets the object at 0.2695 + 0.5, a2 at 0.45 + 0.0045, so a2
    # does; free: a1 (0.2695 < 0.45).
    pred = tf.constant([[[[0.3, 0.0]], [[1.0, 3.0]]]])
    valid = tf.constant([[True]])
    empty = match(pred, GT, valid, 0.1, solver=solver).numpy()
    free = match(pred, GT, valid, 0.1, solver=solver, free_unmatched=True).numpy()
    np.testing.assert_array_equal(empty, [[-1, 0]])
    np.testing.assert_array_equal(free, [[0, -1]])


@pytest.mark.parametrize("reading", ["weights", "floors"])
def test_trainer_takes_the_sum_floor_from_gamma_only_when_floors(reading):
    images, targets = tiny_dataset(n=2)
    net = DecompNet(ModelConfig(**TINY))
    net.build()
    trainer = DecompTrainer(net, 2, LossConfig(paper_lambda_gamma=reading,
                                               unmatched_steps="free"))
    sums = []
    for gamma in (0.3, 1.0):
        trainer.gamma.assign(gamma)
        terms, _ = trainer.compute_terms(tf.constant(images), targets, training=False)
        sums.append(float(terms["instance_sum"]))
    if reading == "weights":
        assert sums[0] == pytest.approx(sums[1], rel=1e-6)
    else:  # A higher floor weighs every pixel more: the distance grows.
        assert sums[1] > sums[0] * 1.01
    total = float(trainer.total_loss(terms))
    lam, gamma = (1.0, 1.0) if reading == "floors" else (float(trainer.lam), 1.0)
    expected = (lam * float(terms["instance_matched"]) + gamma * float(terms["instance_sum"])
                + float(terms["box"]))
    assert total == pytest.approx(expected, rel=1e-5)
