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
    graph_assign,
    hungarian_assign,
    instance_cost_matrix,
    match,
    ordered_assignment,
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


def test_first_n_rule_matches_the_first_n_steps_optimally():
    rng = np.random.default_rng(7)
    for _ in range(100):
        steps, num_cols = int(rng.integers(1, 6)), int(rng.integers(0, 7))
        cost = rng.integers(0, 4, size=(1, steps, num_cols)).astype(np.float64)
        stop = rng.uniform(0, 1, size=(1, steps))
        n = int(rng.integers(0, num_cols + 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SurplusObjectsWarning)
            out = hungarian_assign(cost, stop, np.array([n]), first_n=True)[0]
        k = min(n, steps)
        assert (out[k:] == -1).all() and (out[:k] >= 0).all(), out
        assert len(set(out[:k].tolist())) == k and (out[:k] < n).all()
        # Optimal among the first k steps: brute force over injections into the n objects.
        best = min(sum(cost[0, t, c] for t, c in enumerate(inj))
                   for inj in itertools.permutations(range(n), k)) if k else 0.0
        assert sum(cost[0, t, out[t]] for t in range(k)) == pytest.approx(best)


def test_ordered_rule_goes_left_to_right_then_top_to_bottom():
    boxes = np.zeros((2, 4, 4), np.float32)
    # Image 0: centres x = 0.7, 0.2, 0.5 (+ padding); image 1: two at x = 0.3, y 0.8 and 0.1.
    boxes[0, :3] = [[0.0, 0.6, 0.2, 0.8], [0.5, 0.1, 0.7, 0.3], [0.1, 0.4, 0.3, 0.6]]
    boxes[1, :2] = [[0.7, 0.2, 0.9, 0.4], [0.0, 0.2, 0.2, 0.4]]
    valid = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    got = ordered_assignment(tf.constant(boxes), tf.constant(valid), 5).numpy()
    np.testing.assert_array_equal(got, [[1, 2, 0, -1, -1], [1, 0, -1, -1, -1]])
    # T < n: the T leftmost objects; match() takes the same path and needs the boxes.
    np.testing.assert_array_equal(ordered_assignment(boxes, valid, 2).numpy(), [[1, 2], [1, 0]])
    pred = tf.zeros((2, 5, 3, 3))
    gt = tf.zeros((2, 4, 3, 3))
    np.testing.assert_array_equal(match(pred, gt, valid, 0.1, rule="ordered", gt_boxes=boxes),
                                  got)
    with pytest.raises(ValueError, match="needs the ground-truth boxes"):
        match(pred, gt, valid, 0.1, rule="ordered")
    with pytest.raises(ValueError, match="matching rule must be one of"):
        match(pred, gt, valid, 0.1, rule="greedy")


def test_largest_first_rule_sorts_by_area_then_left_to_right():
    rng = np.random.default_rng(3)
    batch, num, steps = 6, 7, 5
    # Whole pixels of a 100x100 image, sides from a few values so that equal areas (ties)
    # occur, some with the sides swapped.
    size = rng.choice([10, 20, 30], size=(batch, num, 2))
    corner = rng.integers(0, 60, size=(batch, num, 2))
    pixels = np.concatenate([corner, corner + size], axis=-1)
    boxes = (pixels / 100).astype(np.float32)
    counts = [0, 1, 3, 5, 7, 7]
    valid = np.array([[i < n for i in range(num)] for n in counts])
    got = match(tf.zeros((batch, steps, 3, 3)), tf.zeros((batch, num, 3, 3)), valid, 0.1,
                rule="largest_first", gt_boxes=boxes).numpy()
    for b, n in enumerate(counts):
        area = [size[b, i, 0] * size[b, i, 1] for i in range(n)]  # Exact, in pixels.
        x = [pixels[b, i, 1] + pixels[b, i, 3] for i in range(n)]
        y = [pixels[b, i, 0] + pixels[b, i, 2] for i in range(n)]
        # Python's sort as the reference: area descending, then centre x, then centre y.
        want = sorted(range(n), key=lambda i: (-area[i], x[i], y[i]))[:steps]
        np.testing.assert_array_equal(got[b], want + [-1] * (steps - len(want)))
    with pytest.raises(ValueError, match="needs the ground-truth boxes"):
        match(tf.zeros((1, 2, 3, 3)), tf.zeros((1, 1, 3, 3)), np.ones((1, 1)), 0.1,
              rule="largest_first")


def _total(cost, stop, assignment):
    return np.array([_assignment_cost(c, s, a) for c, s, a in zip(cost, stop, assignment)])


def _cases(rng, batch, steps, num_cols, kind):
    """Batched random matching problems of one shape; `kind` picks the nasty ones."""
    if kind == "ties":
        cost = rng.integers(0, 3, (batch, steps, num_cols)).astype(np.float64)
        stop = rng.integers(0, 3, (batch, steps)).astype(np.float64)
    elif kind == "zeros":
        cost, stop = np.zeros((batch, steps, num_cols)), np.zeros((batch, steps))
    elif kind == "huge":
        cost = rng.choice([0.0, 1.0, 1e9, 1e12], (batch, steps, num_cols))
        stop = rng.choice([0.0, 1e9], (batch, steps))
    else:
        cost, stop = rng.random((batch, steps, num_cols)), rng.random((batch, steps))
    num_gt = rng.integers(0, num_cols + 1, batch).astype(np.int32)
    num_gt[: min(batch, 3)] = [0, num_cols, min(steps, num_cols)][: min(batch, 3)]
    padded = np.arange(num_cols)[None, None, :] >= num_gt[:, None, None]
    return np.where(padded, INVALID_COST, cost), stop, num_gt  # Padded columns as match() has.


@pytest.mark.parametrize("first_n", [False, True])
def test_graph_solver_equals_scipy_on_thousands_of_cases(first_n):
    """The in-graph solver's total cost equals the host's on random and nasty problems (ties,
    zero and huge costs, no objects, as many objects as steps, more objects than steps,
    padded columns, the stop columns), for both matching rules that solve an assignment."""
    rng = np.random.default_rng(11)
    checked = 0
    for steps, num_cols in [(1, 0), (1, 3), (3, 3), (4, 2), (4, 7), (8, 10), (11, 10)]:
        for kind in ("random", "ties", "zeros", "huge"):
            cost, stop, num_gt = _cases(rng, 100, steps, num_cols, kind)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SurplusObjectsWarning)
                ref = hungarian_assign(cost, stop, num_gt, first_n=first_n)
            got = graph_assign(tf.constant(cost), tf.constant(stop), tf.constant(num_gt),
                               first_n).numpy()
            scale = np.maximum(1.0, np.abs(cost[cost < INVALID_COST]).max(initial=1.0))
            np.testing.assert_allclose(_total(cost, stop, got), _total(cost, stop, ref),
                                       rtol=0, atol=1e-9 * scale, err_msg=f"{kind} {steps}")
            # Same structure: which steps hold an object, each object at most once.
            np.testing.assert_array_equal(got >= 0, ref >= 0) if first_n else (
                np.testing.assert_array_equal((got >= 0).sum(1), (ref >= 0).sum(1)))
            for row, n in zip(got, num_gt):
                real = row[row >= 0]
                assert len(set(real.tolist())) == len(real) and (real < n).all()
            checked += len(cost)
    assert checked == 2800


def test_graph_solver_compiles_with_xla_and_matches_eager():
    rng = np.random.default_rng(5)
    cost, stop, num_gt = _cases(rng, 48, 8, 10, "random")
    fn = tf.function(lambda c, s, n: graph_assign(c, s, n), jit_compile=True)
    got = fn(tf.constant(cost), tf.constant(stop), tf.constant(num_gt)).numpy()
    eager = graph_assign(tf.constant(cost), tf.constant(stop), tf.constant(num_gt)).numpy()
    np.testing.assert_allclose(_total(cost, stop, got), _total(cost, stop, eager), atol=1e-9)
    # match() through the graph solver, compiled, equals the host solver's optimum.
    pred, gt, valid = _random_problem(3, batch=2, steps=5, num_cols=6)
    host = match(pred, gt, valid, 0.1).numpy()
    compiled = tf.function(lambda: match(pred, gt, valid, 0.1, solver="graph"),
                           jit_compile=True)().numpy()
    c, s = (x.numpy() for x in instance_cost_matrix(pred, gt, valid, 0.1))
    np.testing.assert_allclose(_total(c, s, compiled), _total(c, s, host), atol=1e-9)
    # In float32 (what a TPU uses): the same optimum on costs that are not near-ties.
    single = match(pred, gt, valid, 0.1, solver="graph", cost_dtype=tf.float32).numpy()
    np.testing.assert_allclose(_total(c, s, single), _total(c, s, host), atol=1e-6)
    with pytest.raises(ValueError, match="matching solver must be one of"):
        match(pred, gt, valid, 0.1, solver="auction")
