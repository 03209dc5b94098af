"""Tests for decompnet_tf.matching (Hungarian matching of section 2.2)."""

import itertools
import warnings

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.losses import weighted_sq_distance
from decompnet_tf.matching import (
    INVALID_COST,
    SurplusObjectsWarning,
    hungarian_assign,
    instance_cost_matrix,
    match,
)


def _assignment_cost(cost, stop, assignment):
    """Total cost of one image's assignment (stop cost for -1)."""
    return sum(stop[t] if a < 0 else cost[t, a] for t, a in enumerate(assignment))


def _brute_force(cost, stop, n):
    """Optimum over all feasible assignments of one image, by enumeration."""
    steps = cost.shape[0]
    if n <= steps:
        # Padded square problem: n real columns + (T - n) copies of the stop column.
        square = np.concatenate([cost[:, :n], np.repeat(stop[:, None], steps - n, 1)], axis=1)
        return min(
            sum(square[t, c] for t, c in enumerate(perm))
            for perm in itertools.permutations(range(steps))
        )
    # More objects than predictions: injective maps predictions -> objects.
    return min(
        sum(cost[t, c] for t, c in enumerate(inj))
        for inj in itertools.permutations(range(n), steps)
    )


def test_hungarian_equals_brute_force_random():
    rng = np.random.default_rng(1234)
    seen = {"zero": 0, "fewer": 0, "equal": 0, "more": 0}
    for case in range(200):
        batch = int(rng.integers(1, 4))
        steps = int(rng.integers(1, 5))
        num_cols = int(rng.integers(0, 7))
        if case % 3 == 0:  # small integer costs: many ties
            cost = rng.integers(0, 3, size=(batch, steps, num_cols)).astype(np.float64)
            stop = rng.integers(0, 3, size=(batch, steps)).astype(np.float64)
        else:
            cost = rng.uniform(0, 1, size=(batch, steps, num_cols))
            stop = rng.uniform(0, 1, size=(batch, steps))
        num_gt = rng.integers(0, num_cols + 1, size=batch).astype(np.int32)
        if (num_gt > steps).any():
            with pytest.warns(SurplusObjectsWarning):
                out = hungarian_assign(cost, stop, num_gt)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", SurplusObjectsWarning)
                out = hungarian_assign(cost, stop, num_gt)
        assert out.dtype == np.int32 and out.shape == (batch, steps)
        for b in range(batch):
            n = int(num_gt[b])
            key = "zero" if n == 0 else "fewer" if n < steps else "equal" if n == steps else "more"
            seen[key] += 1
            real = out[b][out[b] >= 0]
            assert len(set(real.tolist())) == len(real), "an object was matched twice"
            assert (real < n).all(), "a padded column was matched"
            assert len(real) == min(n, steps)
            got = _assignment_cost(cost[b], stop[b], out[b])
            assert got == pytest.approx(_brute_force(cost[b], stop[b], n), abs=1e-9)
    assert all(v > 10 for v in seen.values()), seen


def test_surplus_objects_choose_optimal_subset():
    # 1 prediction, 3 objects: must take the cheapest object (index 2) and warn.
    cost = np.array([[[0.5, 0.9, 0.1]]])
    with pytest.warns(SurplusObjectsWarning):
        out = hungarian_assign(cost, np.array([[0.0]]), np.array([3]))
    assert out.tolist() == [[2]]


def test_stop_column_can_take_any_prediction():
    # 3 predictions, 1 object: prediction 0 is the zero map, prediction 2 matches the object.
    cost = np.array([[[5.0], [3.0], [0.0]]])
    stop = np.array([[0.0, 1.0, 4.0]])
    assert hungarian_assign(cost, stop, np.array([1])).tolist() == [[-1, -1, 0]]


def _random_problem(seed, batch=2, steps=3, num_cols=4, h=4, w=5):
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 1, size=(batch, steps, h, w)).astype(np.float32)
    gt = (rng.uniform(size=(batch, num_cols, h, w)) > 0.6).astype(np.float32)
    num_gt = np.array([2, num_cols][:batch])
    valid = np.arange(num_cols)[None, :] < num_gt[:, None]
    gt[~valid] = 0.0
    return pred, gt, valid


def test_cost_matrix_equals_double_loop():
    pred, gt, valid = _random_problem(0)
    p = 0.3
    cost, stop = instance_cost_matrix(pred, gt, valid, p)
    cost, stop = cost.numpy(), stop.numpy()
    assert cost.shape == (2, 3, 4) and stop.shape == (2, 3)
    for b in range(2):
        for t in range(3):
            ref_stop = weighted_sq_distance(pred[b, t], np.zeros_like(pred[b, t]), p).numpy()
            assert stop[b, t] == pytest.approx(ref_stop, abs=1e-5)
            for j in range(4):
                if valid[b, j]:
                    ref = weighted_sq_distance(pred[b, t], gt[b, j], p).numpy()
                    assert cost[b, t, j] == pytest.approx(ref, abs=1e-5)
                else:
                    assert cost[b, t, j] == INVALID_COST


def test_match_recovers_permutation_in_tf_function():
    _, gt, valid = _random_problem(1, batch=1, steps=4, num_cols=4)
    valid[:] = [[True, True, True, False]]
    # Predictions: gt objects 2, 0, (zero map), 1 -> expected assignment [2, 0, -1, 1].
    pred = np.stack([gt[0, 2], gt[0, 0], np.zeros_like(gt[0, 0]), gt[0, 1]])[None]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 4, None, None], tf.float32),
            tf.TensorSpec([None, None, None, None], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
        ]
    )
    def run(pred, gt, valid):
        return match(pred, gt, valid, 0.5)

    out = run(tf.constant(pred), tf.constant(gt), tf.constant(valid))
    assert out.dtype == tf.int32
    assert out.numpy().tolist() == [[2, 0, -1, 1]]
    assert run.get_concrete_function().structured_outputs.shape.as_list() == [None, 4]


def test_match_no_objects_and_no_gradient():
    pred = tf.constant(np.random.default_rng(2).uniform(size=(2, 3, 3, 3)), tf.float32)
    gt = tf.zeros([2, 0, 3, 3])
    valid = tf.zeros([2, 0], tf.bool)
    with tf.GradientTape() as tape:
        tape.watch(pred)
        assignment = match(pred, gt, valid, 0.5)
        y = tf.reduce_sum(tf.cast(assignment, tf.float32))
    assert assignment.numpy().tolist() == [[-1, -1, -1]] * 2
    assert tape.gradient(y, pred) is None


def test_match_gradient_is_none_inside_tf_function():
    pred_np, gt_np, valid_np = _random_problem(3, steps=4)

    @tf.function
    def grad(pred):
        with tf.GradientTape() as tape:
            tape.watch(pred)
            assignment = match(pred, tf.constant(gt_np), tf.constant(valid_np), 0.5)
            y = tf.reduce_sum(tf.cast(assignment, tf.float32))
        return tape.gradient(y, pred) is None, assignment

    is_none, assignment = grad(tf.constant(pred_np))
    assert is_none
    cost, stop = instance_cost_matrix(pred_np, gt_np, valid_np, 0.5)
    expected = hungarian_assign(cost.numpy(), stop.numpy(), valid_np.sum(1))
    assert assignment.numpy().tolist() == expected.tolist()


def test_bce_cost_matrix_equals_double_loop_and_matching_is_optimal():
    from decompnet_tf.losses import weighted_bce

    pred, gt, valid = _random_problem(3)
    gt[0, 1, :2] = 0.5  # Soft targets too: the matmul form is exact for any y in [0, 1].
    cost, stop = instance_cost_matrix(pred, gt, valid, 0.2, loss="bce")
    cost, stop = cost.numpy(), stop.numpy()
    for b in range(2):
        for t in range(3):
            ref_stop = weighted_bce(pred[b, t], np.zeros_like(pred[b, t]), 0.2).numpy()
            assert stop[b, t] == pytest.approx(ref_stop, rel=1e-5)
            for j in range(int(valid[b].sum())):
                ref = weighted_bce(pred[b, t], gt[b, j], 0.2).numpy()
                assert cost[b, t, j] == pytest.approx(ref, rel=1e-5)
    assignment = match(pred, gt, valid, 0.2, loss="bce").numpy()
    for b in range(2):
        n = int(valid[b].sum())
        got = _assignment_cost(cost[b], stop[b], assignment[b])
        assert got == pytest.approx(_brute_force(cost[b], stop[b], n), rel=1e-9)
