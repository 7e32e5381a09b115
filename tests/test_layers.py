"""Layers and Sequential: gradients, the contract, dtypes and bad input."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import batches, float64_arrays, seeds, widths

from npgan.gradcheck import check_layer
from npgan.layers import Dense, LeakyReLU, ReLU, Sigmoid, Tanh, mlp

TOL = 1e-6


@given(x=batches(), d_out=widths, seed=seeds, init=st.sampled_from(["glorot", "he"]))
def test_dense_gradcheck(x, d_out, seed, init):
    rng = np.random.default_rng(seed)
    layer = Dense(x.shape[1], d_out, rng=rng, init=init, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(d_out)  # a zero bias would hide mistakes
    report = check_layer(layer, x, rng=rng)
    assert report.ok(TOL), str(report)


@given(x=batches(avoid_zero=1e-3), seed=seeds, slope=st.floats(0.0, 0.99))
def test_leaky_relu_gradcheck(x, seed, slope):
    report = check_layer(LeakyReLU(slope), x, rng=np.random.default_rng(seed))
    assert report.ok(TOL), str(report)


@given(x=batches(low=-5.0, high=-1e-3), seed=seeds)
def test_leaky_relu_gradcheck_negative_only(x, seed):
    layer = LeakyReLU(0.2)
    report = check_layer(layer, x, rng=np.random.default_rng(seed))
    assert report.ok(TOL), str(report)
    # On negative inputs the layer is the linear map x -> 0.2 x.
    np.testing.assert_array_equal(layer.forward(x), 0.2 * x)


@given(x=batches(avoid_zero=1e-3), seed=seeds)
def test_relu_gradcheck(x, seed):
    report = check_layer(ReLU(), x, rng=np.random.default_rng(seed))
    assert report.ok(TOL), str(report)


@given(
    x=batches(low=-20.0, high=20.0), seed=seeds, cls=st.sampled_from([Sigmoid, Tanh])
)
def test_squashing_gradcheck(x, seed, cls):
    report = check_layer(cls(), x, rng=np.random.default_rng(seed))
    assert report.ok(TOL), str(report)


def _kink_distance(net, x):
    """Smallest |pre-activation| that enters a LeakyReLU in ``net``."""
    smallest = np.inf
    for layer in net.layers:
        if isinstance(layer, LeakyReLU) and x.size:
            smallest = min(smallest, float(np.abs(x).min()))
        x = layer.forward(x)
    return smallest


@given(
    x=batches(),
    hidden=st.lists(widths, min_size=2, max_size=2),
    d_out=widths,
    seed=seeds,
    activation=st.sampled_from([Tanh, lambda: LeakyReLU(0.2)]),
)
def test_three_layer_sequential_gradcheck(x, hidden, d_out, seed, activation):
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1], *hidden, d_out]
    net = mlp(
        sizes,
        rng=rng,
        hidden_activation=activation,
        output_activation=Tanh,
        dtype=np.float64,
    )
    for name, p in net.params.items():
        if name.endswith(".b"):
            p[:] = rng.standard_normal(p.shape)
    # A central difference that straddles the kink of LeakyReLU measures the
    # average of two slopes, not a derivative: keep every unit clear of it.
    assume(_kink_distance(net, x) > 1e-2)
    report = check_layer(net, x, rng=rng)
    assert report.ok(TOL), str(report)


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    np.testing.assert_array_equal(ReLU().forward(x), [[0, 0, 0, 0.5, 2.0]])
    np.testing.assert_allclose(LeakyReLU(0.1).forward(x), [[-0.2, -0.05, 0, 0.5, 2.0]])
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x), rtol=1e-15)


def test_dense_init_schemes_have_the_stated_spread():
    rng = np.random.default_rng(0)
    glorot = Dense(400, 600, rng=rng, init="glorot").params["W"]
    limit = np.sqrt(6 / 1000)
    assert np.abs(glorot).max() <= limit
    # Uniform on [-a, a] has standard deviation a / sqrt(3).
    assert glorot.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    he = Dense(400, 600, rng=rng, init="he").params["W"]
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert not Dense(3, 2, rng=rng).params["b"].any()


def test_dense_same_seed_same_weights():
    a = Dense(5, 3, rng=np.random.default_rng(7)).params["W"]
    b = Dense(5, 3, rng=np.random.default_rng(7)).params["W"]
    np.testing.assert_array_equal(a, b)


def test_backward_sets_param_grads_rather_than_accumulating():
    rng = np.random.default_rng(1)
    layer = Dense(4, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((5, 4))
    g = rng.standard_normal((5, 3))
    layer.forward(x)
    layer.backward(g)
    first = layer.grads["W"].copy()
    layer.forward(x)
    layer.backward(g)
    np.testing.assert_array_equal(layer.grads["W"], first)
    np.testing.assert_allclose(first, x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], g.sum(axis=0), rtol=1e-12)
    layer.zero_grad()
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


def test_backward_without_param_grads_leaves_grads_untouched():
    rng = np.random.default_rng(2)
    net = mlp([4, 6, 1], rng=rng, dtype=np.float64)
    for g in net.grads.values():
        g.fill(123.0)
    x = rng.standard_normal((3, 4))
    net.forward(x)
    grad_in = net.backward(np.ones((3, 1)), param_grads=False)
    assert grad_in.shape == (3, 4)
    for name, g in net.grads.items():
        assert np.all(g == 123.0), name
    # The input gradient is the same as with parameter gradients on.
    net.forward(x)
    np.testing.assert_array_equal(net.backward(np.ones((3, 1))), grad_in)


def test_backward_without_input_grad_returns_none_and_same_param_grads():
    rng = np.random.default_rng(3)
    net = mlp([4, 6, 1], rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 1))
    net.forward(x)
    net.backward(g)
    expected = {k: v.copy() for k, v in net.grads.items()}
    net.forward(x)
    assert net.backward(g, input_grad=False) is None
    for name, value in expected.items():
        np.testing.assert_array_equal(net.grads[name], value)


def test_sequential_params_are_the_layers_arrays():
    net = mlp([3, 4, 2], rng=np.random.default_rng(0))
    assert list(net.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert net.params["2.W"] is net.layers[2].params["W"]
    assert net.grads["0.b"] is net.layers[0].grads["b"]


def test_state_dict_round_trip_copies_into_existing_arrays():
    a = mlp([3, 4, 2], rng=np.random.default_rng(0))
    b = mlp([3, 4, 2], rng=np.random.default_rng(1))
    w_before = b.params["0.W"]
    b.load_state_dict(a.state_dict())
    assert b.params["0.W"] is w_before
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    state = a.state_dict()
    state["0.W"][:] = 0  # a copy: changing it leaves the model alone
    assert a.params["0.W"].any()


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    net = mlp([3, 4, 2], rng=np.random.default_rng(0))
    before = net.state_dict()
    other = mlp([3, 5, 2], rng=np.random.default_rng(1)).state_dict()
    with pytest.raises(
        ValueError, match=r"'0.W' expected \(3, 4\) float32, got \(3, 5\)"
    ):
        net.load_state_dict(other)
    with pytest.raises(ValueError, match="missing"):
        net.load_state_dict({"0.W": before["0.W"]})
    wrong_dtype = {k: v.astype(np.float64) for k, v in before.items()}
    with pytest.raises(ValueError, match="float32, got .* float64"):
        net.load_state_dict(wrong_dtype)
    for name, value in before.items():
        np.testing.assert_array_equal(net.params[name], value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_forward_backward(dtype):
    rng = np.random.default_rng(0)
    net = mlp([5, 8, 8, 1], rng=rng, output_activation=Sigmoid, dtype=dtype)
    x = rng.standard_normal((4, 5)).astype(dtype)
    y = net.forward(x)
    assert y.dtype == dtype
    grad_in = net.backward(np.ones_like(y))
    assert grad_in.dtype == dtype
    for name, g in net.grads.items():
        assert g.dtype == dtype, name
    for layer in (ReLU(), LeakyReLU(0.2), Tanh(), Sigmoid()):
        out = layer.forward(x)
        assert out.dtype == dtype
        assert layer.backward(np.ones_like(out)).dtype == dtype


def test_dense_rejects_wrong_width_naming_layer_and_shapes():
    layer = Dense(784, 16, rng=np.random.default_rng(0))
    x = np.zeros((2, 100), np.float32)
    with pytest.raises(ValueError, match=r"Dense\(784 -> 16\).*\(N, 784\).*\(2, 100\)"):
        layer.forward(x)
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        layer.forward(np.zeros(784, np.float32))


def test_dense_rejects_wrong_dtype():
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="float32, got float64"):
        layer.forward(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        layer.forward(np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        Tanh().forward([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_features": 0, "out_features": 2}, "in_features must be an integer >= 1"),
        ({"in_features": 2, "out_features": 2.5}, "out_features must be an integer"),
        ({"in_features": 2, "out_features": 2, "init": "xavier"}, "init must be"),
        ({"in_features": 2, "out_features": 2, "dtype": np.int32}, "floating dtype"),
    ],
)
def test_dense_rejects_bad_configuration(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Dense(rng=np.random.default_rng(0), **kwargs)


def test_dense_needs_a_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        Dense(2, 2, rng=0)


def test_leaky_relu_rejects_bad_slope():
    with pytest.raises(ValueError, match=r"slope must lie in \[0, 1\), got 1.5"):
        LeakyReLU(1.5)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2, rng=np.random.default_rng(0)).backward(np.zeros((1, 2)))


@given(x=float64_arrays((3, 4), -1000.0, 1000.0))
def test_sigmoid_layer_finite_for_huge_inputs(x):
    with np.errstate(all="raise"):
        layer = Sigmoid()
        y = layer.forward(x)
        g = layer.backward(np.ones_like(x))
    assert np.all((y >= 0) & (y <= 1)) and np.all(np.isfinite(g))


def test_dense_backward_refuses_a_gradient_of_another_dtype():
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    layer.forward(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="grad_out of dtype float32, got float64"):
        layer.backward(np.zeros((4, 2)))
