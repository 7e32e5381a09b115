"""Optimizers recomputed from their published formulas."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeds

from npgan.layers import mlp
from npgan.optim import SGD, Adam


def test_adam_two_steps_from_zero_with_unit_gradient():
    p = {"w": np.zeros(1)}
    opt = Adam(p, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(2):
        opt.step({"w": np.ones(1)})
    # With a constant gradient, m_hat = v_hat = 1 at every step, so each step
    # moves by lr / (1 + eps).
    assert p["w"][0] == pytest.approx(-0.2, abs=1e-6)
    assert opt.t == 2


def _adam_reference(p, grads, lr, b1, b2, eps):
    """Kingma & Ba (2015), Algorithm 1, written out in float64."""
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@given(
    seed=seeds,
    steps=st.integers(1, 12),
    lr=st.floats(1e-4, 0.5),
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.5, 0.9999),
)
def test_adam_matches_published_formula(seed, steps, lr, b1, b2):
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(steps)]
    p = {"w": start.copy()}
    opt = Adam(p, lr=lr, betas=(b1, b2), eps=1e-8)
    for g in grads:
        opt.step({"w": g})
    expected, m, v = _adam_reference(start, grads, lr, b1, b2, 1e-8)
    np.testing.assert_allclose(p["w"], expected, rtol=1e-10, atol=1e-12)
    state = opt.state_dict()
    np.testing.assert_allclose(state["m.w"], m, rtol=1e-12)
    np.testing.assert_allclose(state["v.w"], v, rtol=1e-12)
    assert state["t"] == steps


@given(seed=seeds, steps=st.integers(1, 10), momentum=st.floats(0.0, 0.99))
def test_sgd_momentum_matches_formula(seed, steps, momentum):
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(5)
    p = {"w": start.copy()}
    opt = SGD(p, lr=0.05, momentum=momentum)
    u = np.zeros(5)
    expected = start.copy()
    for _ in range(steps):
        g = rng.standard_normal(5)
        opt.step({"w": g})
        u = momentum * u + g
        expected = expected - 0.05 * u
    np.testing.assert_allclose(p["w"], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [Adam, SGD])
def test_updates_are_in_place_and_keep_float32(cls):
    rng = np.random.default_rng(0)
    net = mlp([4, 3, 1], rng=rng)
    arrays = {name: p for name, p in net.params.items()}
    opt = cls(net.params, lr=0.01)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    net.forward(x)
    net.backward(np.ones((5, 1), np.float32))
    before = net.state_dict()
    opt.step(net.grads)
    for name, p in net.params.items():
        assert p is arrays[name]
        assert p.dtype == np.float32
        assert not np.array_equal(p, before[name]), name
    for arrays_ in opt._state_arrays().values():
        for a in arrays_.values():
            assert a.dtype == np.float32


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(5)
    grads = [{"w": rng.standard_normal(3)} for _ in range(6)]
    p1 = {"w": np.ones(3)}
    a = Adam(p1, lr=0.01)
    for g in grads[:3]:
        a.step(g)
    p2 = {"w": p1["w"].copy()}
    b = Adam(p2, lr=0.01)
    b.load_state_dict(a.state_dict())
    for g in grads[3:]:
        a.step(g)
        b.step(g)
    np.testing.assert_array_equal(p1["w"], p2["w"])
    assert b.t == 6


def test_two_optimizers_share_no_state():
    pa, pb = {"w": np.zeros(2)}, {"w": np.zeros(2)}
    a, b = Adam(pa, lr=0.1), Adam(pb, lr=0.1)
    a.step({"w": np.ones(2)})
    assert b.t == 0 and not b.m["w"].any() and a.m["w"] is not b.m["w"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: Adam(p, lr=0.0), "lr must be a positive finite number, got 0.0"),
        (lambda p: Adam(p, lr=float("nan")), "lr must be a positive finite"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), r"beta1 must lie in \[0, 1\), got 1.0"),
        (lambda p: Adam(p, betas=(0.5, -0.1)), r"beta2 must lie in \[0, 1\)"),
        (lambda p: Adam(p, eps=0.0), "eps must be > 0"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
        (lambda p: Adam({}, lr=0.1), "non-empty dict"),
    ],
)
def test_optimizers_reject_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make({"w": np.zeros(2)})


def test_step_rejects_mismatched_grads_and_bad_state():
    opt = Adam({"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(ValueError, match=r"missing grads \['w'\]"):
        opt.step({"v": np.zeros(2)})
    state = opt.state_dict()
    state["m.w"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"'m.w' expected \(2,\) float64, got \(3,\)"):
        opt.load_state_dict(state)


def test_step_rejects_a_wrong_gradient_shape_before_updating_anything():
    params = {"a": np.zeros((4, 8)), "b": np.zeros((8, 1))}
    opt = Adam(params, lr=0.1)
    grads = {"a": np.ones((4, 8)), "b": np.ones(8)}  # (8,) would broadcast
    with pytest.raises(ValueError, match=r"gradient 'b' has shape \(8,\), expected"):
        opt.step(grads)
    assert opt.t == 0 and not params["a"].any()
    with pytest.raises(TypeError, match="gradient 'a' has dtype float32"):
        opt.step({"a": np.ones((4, 8), np.float32), "b": np.ones((8, 1))})
