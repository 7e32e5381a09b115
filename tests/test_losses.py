"""Losses: gradients, values against direct formulas, stability, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import batch_sizes, float64_arrays, logits_and_targets, seeds

from npgan import functional as F
from npgan.gradcheck import check_loss
from npgan.losses import bce, bce_with_logits, generator_loss, softmax_cross_entropy

TOL = 1e-6


@given(data=logits_and_targets(bound=50.0, column=True), seed=seeds)
def test_bce_with_logits_gradcheck(data, seed):
    logits, targets = data
    report = check_loss(
        bce_with_logits, logits, targets, rng=np.random.default_rng(seed)
    )
    assert report.ok(TOL), str(report)


@given(
    data=logits_and_targets(bound=50.0),
    seed=seeds,
    kind=st.sampled_from(["minimax", "non-saturating"]),
)
def test_generator_loss_gradcheck(data, seed, kind):
    logits, _ = data
    rng = np.random.default_rng(seed)
    report = check_loss(generator_loss, logits, kind, rng=rng)
    assert report.ok(TOL), str(report)


@given(n=batch_sizes, seed=seeds)
def test_bce_on_probabilities_gradcheck(n, seed):
    rng = np.random.default_rng(seed)
    # Away from the clamp, where the loss is the smooth textbook formula.
    probs = rng.uniform(0.05, 0.95, size=(n, 1))
    targets = rng.integers(0, 2, size=n).astype(np.float64)
    report = check_loss(bce, probs, targets, rng=rng)
    assert report.ok(TOL), str(report)


@given(
    n=batch_sizes,
    c=st.integers(2, 12),
    seed=seeds,
    scale=st.sampled_from([1.0, 10.0, 50.0]),
)
def test_softmax_cross_entropy_gradcheck(n, c, seed, scale):
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-scale, scale, size=(n, c))
    labels = rng.integers(0, c, size=n)
    report = check_loss(softmax_cross_entropy, logits, labels, rng=rng)
    assert report.ok(TOL), str(report)


@given(data=logits_and_targets(bound=30.0))
def test_bce_with_logits_matches_formula(data):
    logits, t = data
    p = 1 / (1 + np.exp(-logits))
    # log p = -log(1 + e^-l) and log(1 - p) = -log(1 + e^l), via logaddexp,
    # which is accurate where 1 - p would round away.
    log_p, log_1mp = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    expected = -np.mean(t * log_p + (1 - t) * log_1mp)
    value, grad = bce_with_logits(logits, t)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(grad, (p - t) / len(t), rtol=1e-12, atol=1e-300)


@given(logits=float64_arrays((6,), -30.0, 30.0))
def test_generator_losses_match_formulas(logits):
    d = 1 / (1 + np.exp(-logits))
    value, grad = generator_loss(logits, "minimax")
    log_1md = -np.logaddexp(0, logits)  # log(1 - D), accurate as D -> 1
    assert value == pytest.approx(np.mean(log_1md), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(grad, -d / 6, rtol=1e-12)
    value, grad = generator_loss(logits, "non-saturating")
    assert value == pytest.approx(
        np.mean(np.logaddexp(0, -logits)), rel=1e-9, abs=1e-12
    )
    np.testing.assert_allclose(grad, -1 / (1 + np.exp(logits)) / 6, rtol=1e-12)  # 1 - D


def test_bce_on_probabilities_known_values_and_clamp():
    value, grad = bce(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert value == pytest.approx(np.log(2), rel=1e-15)
    np.testing.assert_allclose(grad, [-1.0, 1.0])  # (p - t) / (p (1 - p)) / N
    value, _ = bce(np.array([0.0]), np.array([1.0]))
    assert value == pytest.approx(-np.log(1e-7), rel=1e-12)


def test_softmax_cross_entropy_known_value():
    logits = np.zeros((2, 4))
    value, grad = softmax_cross_entropy(logits, np.array([0, 3]))
    assert value == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(grad[0], [(0.25 - 1) / 2, 0.125, 0.125, 0.125])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_finite_at_plus_minus_1000(dtype):
    x = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0], dtype=dtype)
    t = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    with np.errstate(all="raise"):
        for value, grad in (
            bce_with_logits(x, t),
            generator_loss(x, "minimax"),
            generator_loss(x, "non-saturating"),
            softmax_cross_entropy(np.stack([x, -x, x[::-1]], axis=1), np.arange(5) % 3),
            bce(F.sigmoid(x), t),
        ):
            assert np.isfinite(value)
            assert np.all(np.isfinite(grad))
            assert grad.dtype == dtype
        s = F.sigmoid(x)
    assert s.dtype == dtype
    np.testing.assert_array_equal(s[[0, 2, 4]], np.array([0.0, 0.5, 1.0], dtype))
    # softplus(1000) - 1000 * 0 and the clamp-free form give the exact loss.
    value, _ = bce_with_logits(np.array([1000.0, -1000.0], dtype), np.array([0.0, 1.0]))
    assert value == pytest.approx(1000.0, rel=1e-6)


def test_column_predictions_do_not_broadcast_against_row_targets():
    logits = np.array([[10.0], [-10.0], [10.0]])
    targets = np.array([1.0, 0.0, 1.0])
    value, grad = bce_with_logits(logits, targets)
    assert grad.shape == (3, 1)
    # Entry by entry every prediction is right, so the loss is tiny; an
    # (N, N) broadcast would mix in the wrong pairs and give about 6.7.
    assert value < 1e-4


def test_targets_of_another_shape_are_rejected():
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\) or \(3, 1\)"):
        bce_with_logits(np.zeros((3, 1)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\), got \(3, 2\)"):
        bce_with_logits(np.zeros((3, 2)), np.zeros(3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bce(np.array([1.5]), np.array([1.0])), r"probs must lie in \[0, 1\]"),
        (lambda: bce(np.array([-0.1]), np.array([1.0])), r"probs must lie in \[0, 1\]"),
        (lambda: bce_with_logits(np.array([0.0]), np.array([2.0])), "targets must lie"),
        (
            lambda: bce_with_logits(np.array([np.nan]), np.array([1.0])),
            "NaN or infinity",
        ),
        (lambda: generator_loss(np.array([np.inf])), "NaN or infinity"),
        (lambda: generator_loss(np.zeros(2), "wasserstein"), "kind must be one of"),
        (lambda: generator_loss(np.zeros(0)), "empty"),
        (lambda: generator_loss(np.zeros(2, np.int64)), "floating-point"),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
            r"\[0, 3\)",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
            "integers",
        ),
        (lambda: softmax_cross_entropy(np.zeros(3), np.array([0])), r"\(N, C\)"),
    ],
)
def test_losses_reject_bad_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@given(x=hnp.arrays(np.float64, (8,), elements=st.floats(-1000, 1000)))
def test_functional_identities(x):
    with np.errstate(all="raise"):
        s, s_neg = F.sigmoid(x), F.sigmoid(-x)
        sp, sp_neg = F.softplus(x), F.softplus(-x)
        log_s = F.log_sigmoid(x)
    np.testing.assert_allclose(s + s_neg, 1.0, rtol=1e-15)
    np.testing.assert_allclose(sp - sp_neg, x, atol=1e-12)
    assert np.all(log_s <= 0)
