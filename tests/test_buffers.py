"""Buffer reuse and the cut, threaded optimizer step: fast, and no bit different."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeds

from npgan import _parallel
from npgan.data import to_unit
from npgan.gan import GAN, GANConfig
from npgan.layers import Dense, Layer, LeakyReLU, ReLU, Sequential, Tanh, mlp
from npgan.optim import PIECE, SGD, Adam
from npgan.train import Trainer


@pytest.fixture
def threads():
    """Set npgan's thread count for one test, restoring the default after."""
    yield _parallel.set_num_threads
    _parallel.set_num_threads(None)


def reference_forward(net, x):
    """Each layer applied on its own, every result a new array."""
    for layer in net.layers:
        x = layer.forward(x)
    return x


def reference_backward(net, grad):
    grads = {}
    for i in range(len(net.layers) - 1, -1, -1):
        grad = net.layers[i].backward(grad)
        for name, g in net.layers[i].grads.items():
            grads[f"{i}.{name}"] = g.copy()
    return grad, grads


def small_net(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return mlp([5, 7, 6, 1], rng=rng, output_activation=Tanh, dtype=dtype)


# ---------------------------------------------------------------------------
# Layers


@given(seed=seeds, slope=st.sampled_from([0.0, 0.01, 0.2, 0.5]))
def test_leaky_relu_backward_bitwise_equals_masked_select(seed, slope):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 9)).astype(np.float32)
    x[0, :3] = [0.0, -0.0, 1e-30]  # the kink, its signed twin and a tiny value
    g = rng.standard_normal((6, 9)).astype(np.float32)
    layer = LeakyReLU(slope)
    layer.forward(x)
    out = layer.backward(g)
    expected = np.where(x > 0, g, g * np.float32(slope))
    assert out.dtype == np.float32
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda: LeakyReLU(0.2),
        ReLU,
        Tanh,
        lambda: Dense(4, 3, rng=np.random.default_rng(0)),
    ],
)
def test_layer_out_receives_the_same_values_as_a_new_array(make):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    layer = make()
    y_new = layer.forward(x).copy()
    gy = rng.standard_normal(y_new.shape).astype(np.float32)
    g_new = layer.backward(gy).copy()
    y_buf, g_buf = np.empty_like(y_new), np.empty_like(g_new)
    assert layer.forward(x, out=y_buf) is y_buf
    assert layer.backward(gy, out=g_buf) is g_buf
    np.testing.assert_array_equal(y_buf, y_new)
    np.testing.assert_array_equal(g_buf, g_new)


def test_out_of_wrong_shape_or_dtype_is_a_value_error():
    layer = Dense(4, 3, rng=np.random.default_rng(0))
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(
        ValueError, match=r"Dense\(4 -> 3\): out must be an array of shape \(2, 3\)"
    ):
        layer.forward(x, out=np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="dtype float32, got \\(2, 3\\) float64"):
        layer.forward(x, out=np.empty((2, 3)))


def test_dense_single_output_input_gradient_is_the_outer_product():
    rng = np.random.default_rng(2)
    layer = Dense(6, 1, rng=rng)
    layer.forward(rng.standard_normal((4, 6)).astype(np.float32))
    g = rng.standard_normal((4, 1)).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(g), g @ layer.params["W"].T)


# ---------------------------------------------------------------------------
# Sequential


def test_sequential_matches_layer_by_layer_and_keeps_its_inner_buffers():
    rng = np.random.default_rng(3)
    net = small_net()
    x = rng.standard_normal((8, 5)).astype(np.float32)
    g = rng.standard_normal((8, 1)).astype(np.float32)
    expected_y = reference_forward(net, x).copy()
    expected_gx, expected_grads = reference_backward(net, g)
    inner = None
    for _ in range(3):
        y = net.forward(x)
        gx = net.backward(g)
        np.testing.assert_array_equal(y, expected_y)
        np.testing.assert_array_equal(gx, expected_gx)
        for name, value in expected_grads.items():
            np.testing.assert_array_equal(net.grads[name], value)
        # The second layer caches its input: the first layer's output buffer.
        cached = net.layers[1]._x
        if inner is None:
            inner = cached
        assert cached is inner  # the same array every step: nothing allocated


def test_sequential_results_are_new_arrays_that_later_calls_leave_alone():
    rng = np.random.default_rng(4)
    net = small_net()
    x1, x2 = (rng.standard_normal((6, 5)).astype(np.float32) for _ in range(2))
    y1 = net.forward(x1)
    kept = y1.copy()
    y2 = net.forward(x2)
    assert y2 is not y1 and not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, kept)
    g1 = net.backward(np.ones((6, 1), np.float32))
    kept = g1.copy()
    net.backward(np.full((6, 1), 2.0, np.float32))
    np.testing.assert_array_equal(g1, kept)


def test_sequential_batch_sizes_do_not_mix_their_buffers():
    """Forward at N, at M, at N again: backward uses the last batch only."""
    rng = np.random.default_rng(5)
    net = small_net()
    xs = {n: rng.standard_normal((n, 5)).astype(np.float32) for n in (4, 9)}
    g = rng.standard_normal((4, 1)).astype(np.float32)
    expected_y = reference_forward(net, xs[4]).copy()
    expected_gx, expected_grads = reference_backward(net, g)
    net.forward(xs[4])
    net.forward(xs[9])
    net.backward(rng.standard_normal((9, 1)).astype(np.float32))
    y = net.forward(xs[4])
    gx = net.backward(g)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(gx, expected_gx)
    for name, value in expected_grads.items():
        np.testing.assert_array_equal(net.grads[name], value)
    assert set(net._workspaces) == {
        (4, np.dtype(np.float32)),
        (9, np.dtype(np.float32)),
    }


def test_sequential_keeps_few_and_small_workspaces():
    net = small_net()
    net.max_workspaces = 2
    for n in (1, 2, 3):
        net.forward(np.zeros((n, 5), np.float32))
    assert [key[0] for key in net._workspaces] == [2, 3]  # least recent dropped
    net.max_workspace_bytes = 7 * 4 * 50  # smaller than a batch of 50
    y = net.forward(np.ones((50, 5), np.float32))
    assert (50, np.dtype(np.float32)) not in net._workspaces
    np.testing.assert_array_equal(
        y, reference_forward(net, np.ones((50, 5), np.float32))
    )


def test_sequential_writes_into_out_and_accepts_old_style_layers():
    class Double(Layer):  # the older contract: no out keyword
        def forward(self, x):
            return 2 * x

        def backward(self, grad_out, *, param_grads=True, input_grad=True):
            return 2 * grad_out if input_grad else None

    rng = np.random.default_rng(6)
    net = Sequential(Dense(3, 4, rng=rng), Double(), LeakyReLU(0.2), Double())
    x = rng.standard_normal((5, 3)).astype(np.float32)
    out = np.empty((5, 4), np.float32)
    y = net.forward(x, out=out)
    assert y is out
    np.testing.assert_array_equal(out, reference_forward(net, x))
    gin = np.empty((5, 3), np.float32)
    assert net.backward(np.ones((5, 4), np.float32), out=gin) is gin
    expected, _ = reference_backward(net, np.ones((5, 4), np.float32))
    np.testing.assert_array_equal(gin, expected)


# ---------------------------------------------------------------------------
# Optimizers


def _adam_float64(p, grads, lr, b1, b2, eps):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_adam_pieces_and_threads_change_no_bit(threads, n_threads):
    """Parameters of several pieces (and a ragged tail) update identically."""
    rng = np.random.default_rng(7)
    shapes = {"W": (3, PIECE + 17), "b": (5,), "V": (2 * PIECE,)}
    start = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = [
        {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        for _ in range(3)
    ]
    results = []
    for count in (1, n_threads):
        threads(count)
        params = {k: v.copy() for k, v in start.items()}
        opt = Adam(params, lr=1e-2)
        for g in grads:
            opt.step(g)
        results.append(params)
    for k in shapes:
        assert results[0][k].tobytes() == results[1][k].tobytes(), k
        expected = _adam_float64(
            start[k].astype(np.float64),
            [g[k].astype(np.float64) for g in grads],
            1e-2,
            0.5,
            0.999,
            1e-8,
        )
        np.testing.assert_allclose(results[1][k], expected, rtol=1e-5, atol=1e-6)


def test_optimizers_update_strided_parameters_in_place(threads):
    threads(2)
    rng = np.random.default_rng(8)
    base = rng.standard_normal((6, 8))
    view = base[:, ::2]  # not contiguous: updated as one piece, in place
    g = rng.standard_normal((6, 4))
    for cls, kw in ((Adam, {"lr": 0.1}), (SGD, {"lr": 0.1, "momentum": 0.9})):
        work = base.copy()
        params = {"w": work[:, ::2]}
        cls(params, **kw).step({"w": g})
        expected = view - 0.1 * (np.sign(g) if cls is Adam else g)
        np.testing.assert_allclose(work[:, ::2], expected, rtol=1e-6)
        np.testing.assert_array_equal(work[:, 1::2], base[:, 1::2])


def test_adam_cuts_again_when_given_other_gradient_arrays():
    rng = np.random.default_rng(9)
    params = {"w": np.zeros(PIECE + 3, np.float32)}
    opt = Adam(params, lr=0.1)
    g1 = {"w": np.ones(PIECE + 3, np.float32)}
    opt.step(g1)
    plan = opt._plan
    opt.step(g1)
    assert opt._plan is plan  # same arrays: the same pieces
    g2 = {"w": -rng.uniform(1, 2, PIECE + 3).astype(np.float32)}
    before = params["w"].copy()
    opt.step(g2)
    assert opt._plan is not plan
    # m = 0.5 * 0.75 + 0.5 g < 0 for g < -1: the step goes up. Stale pieces
    # cut from g1 would have read +1 and moved it down.
    assert np.all(params["w"] > before)


def test_parallel_run_raises_a_workers_error_and_carries_errstate(threads):
    def overflow():
        np.multiply(np.float32(3e38), np.float32(10))

    def fine():
        pass

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            _parallel.run([fine, overflow])
    with np.errstate(over="ignore"):
        _parallel.run([fine, overflow])  # no error, and no warning either

    def fail():
        raise KeyError("worker")

    with pytest.raises(KeyError, match="worker"):
        _parallel.run([fine, fail])


def test_parallel_thread_count_comes_from_setting_then_environment(
    monkeypatch, threads
):
    monkeypatch.setenv("NPGAN_NUM_THREADS", "3")
    assert _parallel.get_num_threads() == 3
    threads(1)
    assert _parallel.get_num_threads() == 1
    threads(99)
    assert _parallel.get_num_threads() == 8
    with pytest.raises(ValueError, match="integer >= 1, got 0"):
        threads(0)


# ---------------------------------------------------------------------------
# GAN and Trainer


SMALL = {"z_dim": 4, "data_dim": 6, "g_hidden": (8,), "d_hidden": (8,), "batch_size": 5}


def test_gan_outputs_handed_out_stay_valid_after_later_steps():
    gan = GAN(GANConfig(**SMALL), rng=np.random.default_rng(10))
    rng = np.random.default_rng(11)
    z = gan.noise(5, rng)
    samples = gan.generate(z)
    loss, logits = gan.generator_gradients(z)
    kept = samples.copy(), logits.copy()
    real = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
    for _ in range(2):
        gan.discriminator_step(real, rng)
        gan.generator_step(rng)
    np.testing.assert_array_equal(samples, kept[0])
    np.testing.assert_array_equal(logits, kept[1])


def test_gan_discriminator_step_rejects_real_of_another_dtype():
    gan = GAN(GANConfig(**SMALL), rng=np.random.default_rng(12))
    with pytest.raises(TypeError, match="expected real of dtype float32, got float64"):
        gan.discriminator_step(np.zeros((5, 6)), np.random.default_rng(0))


def test_gan_step_draws_the_same_noise_as_noise():
    """The step fills a kept array from rng exactly as noise() would."""
    gan = GAN(GANConfig(**SMALL), rng=np.random.default_rng(13))
    a, b = np.random.default_rng(14), np.random.default_rng(14)
    gan.generator_step(a)
    assert np.array_equal(gan.G.layers[0]._x, gan.noise(5, b))
    assert a.bit_generator.state == b.bit_generator.state


def test_trainer_real_batch_equals_to_unit():
    gan = GAN(GANConfig(**SMALL), rng=np.random.default_rng(15))
    images = np.random.default_rng(16).integers(0, 256, (40, 6), dtype=np.uint8)
    trainer = Trainer(gan, images, rng=np.random.default_rng(17))
    replay = Trainer(gan, images, rng=np.random.default_rng(17))
    for _ in range(3):
        batch = trainer._real_batch()
        idx = replay.sampler.next_batch()
        expected = to_unit(images[idx])
        assert batch.dtype == np.float32
        assert batch.tobytes() == expected.tobytes()
