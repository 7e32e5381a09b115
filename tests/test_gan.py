"""The GAN: one iteration of Algorithm 1, parameter isolation, configuration."""

import numpy as np
import pytest

from npgan.errors import ConfigError, NonFiniteError
from npgan.functional import sigmoid
from npgan.gan import GAN, GANConfig
from npgan.gradcheck import check_loss
from npgan.losses import bce_with_logits
from npgan.train import HISTORY_KEYS, Trainer

SMALL = {"z_dim": 4, "data_dim": 6, "g_hidden": (8,), "d_hidden": (8,), "batch_size": 5}


def small_gan(seed=0, **overrides):
    return GAN(GANConfig(**{**SMALL, **overrides}), rng=np.random.default_rng(seed))


def snapshot(net):
    return {
        name: a.copy()
        for name, a in {
            **net.params,
            **{f"grad:{k}": v for k, v in net.grads.items()},
        }.items()
    }


def assert_bitwise_equal(before, net):
    now = snapshot(net)
    for name, value in before.items():
        assert now[name].tobytes() == value.tobytes(), name


def test_default_config_is_the_common_mnist_recipe():
    gan = GAN(GANConfig(), rng=np.random.default_rng(0))
    shapes = [p.shape for name, p in gan.G.params.items() if name.endswith("W")]
    assert shapes == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    shapes = [p.shape for name, p in gan.D.params.items() if name.endswith("W")]
    assert shapes == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert (gan.opt_g.lr, gan.opt_g.beta1, gan.opt_g.beta2) == (2e-4, 0.5, 0.999)
    assert gan.opt_g is not gan.opt_d
    z = gan.noise(3, np.random.default_rng(1))
    assert z.dtype == np.float32 and z.shape == (3, 100)
    x = gan.generate(z)
    assert x.dtype == np.float32 and np.all(np.abs(x) <= 1)


def test_discriminator_step_leaves_generator_bitwise_unchanged():
    gan = small_gan()
    rng = np.random.default_rng(1)
    before = snapshot(gan.G)
    d_before = gan.D.state_dict()
    real = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
    gan.discriminator_step(real, rng)
    assert_bitwise_equal(before, gan.G)
    assert gan.opt_g.t == 0 and gan.opt_d.t == 1
    assert any(not np.array_equal(d_before[k], gan.D.params[k]) for k in d_before)


def test_generator_step_leaves_discriminator_bitwise_unchanged():
    gan = small_gan()
    rng = np.random.default_rng(2)
    gan.discriminator_step(rng.uniform(-1, 1, (5, 6)).astype(np.float32), rng)
    before = snapshot(gan.D)  # parameters and their last gradients
    g_before = gan.G.state_dict()
    gan.generator_step(rng)
    assert_bitwise_equal(before, gan.D)
    assert gan.opt_d.t == 1 and gan.opt_g.t == 1
    assert any(not np.array_equal(g_before[k], gan.G.params[k]) for k in g_before)


def test_discriminator_step_reports_the_loss_of_both_halves():
    gan = small_gan(dtype="float64")
    rng = np.random.default_rng(3)
    real = rng.uniform(-1, 1, (5, 6))
    # Replay the fakes the step will draw, from a copy of the generator.
    z = gan.noise(5, np.random.default_rng(4))
    fake = gan.G.forward(z)
    logits = gan.D.forward(np.concatenate([real, fake]))
    expected, _ = bce_with_logits(logits, np.r_[np.ones(5), np.zeros(5)])
    p = sigmoid(logits[:, 0])
    out = gan.discriminator_step(real, np.random.default_rng(4))
    assert out["d_loss"] == pytest.approx(expected, rel=1e-12)
    assert out["d_real"] == pytest.approx(p[:5].mean(), rel=1e-12)
    assert out["d_fake"] == pytest.approx(p[5:].mean(), rel=1e-12)


@pytest.mark.parametrize("kind", ["non-saturating", "minimax"])
def test_generator_gradients_through_frozen_discriminator_gradcheck(kind):
    """G's gradient, backpropagated through D, matches finite differences."""
    gan = small_gan(seed=5, dtype="float64", loss=kind)
    z = gan.noise(5, np.random.default_rng(6))
    gan.generator_gradients(z)
    analytic = {k: v.copy() for k, v in gan.G.grads.items()}
    for name, p in gan.G.params.items():
        original = p.copy()

        def loss_at(values, p=p, name=name):
            p[...] = values
            value = gan.generator_gradients(z)[0]
            return value, gan.G.grads[name].copy()

        report = check_loss(loss_at, original.copy(), rng=np.random.default_rng(7))
        p[...] = original
        assert report.ok(1e-6), f"{name}: {report}"
    # The check restored every parameter: the gradients are as before.
    gan.generator_gradients(z)
    for name, value in analytic.items():
        np.testing.assert_array_equal(gan.G.grads[name], value)


def test_generator_step_grad_norm_is_the_norm_of_all_gradients():
    gan = small_gan(dtype="float64")
    z = gan.noise(5, np.random.default_rng(8))
    gan.generator_gradients(z)
    expected = np.sqrt(sum(np.sum(g**2) for g in gan.G.grads.values()))
    out = gan.generator_step(np.random.default_rng(8))  # draws the same z
    assert out["g_grad_norm"] == pytest.approx(expected, rel=1e-12)


def test_float32_stays_float32_through_a_training_step():
    gan = small_gan()
    rng = np.random.default_rng(9)
    gan.discriminator_step(rng.uniform(-1, 1, (5, 6)).astype(np.float32), rng)
    gan.generator_step(rng)
    for net, opt in ((gan.G, gan.opt_g), (gan.D, gan.opt_d)):
        for name in net.params:
            assert net.params[name].dtype == np.float32
            assert net.grads[name].dtype == np.float32
            assert opt.m[name].dtype == np.float32 and opt.v[name].dtype == np.float32


def test_trainer_history_and_k_discriminator_steps():
    gan = small_gan(k=3)
    images = np.random.default_rng(0).integers(0, 256, (40, 6), dtype=np.uint8)
    trainer = Trainer(gan, images, rng=np.random.default_rng(1))
    rows = []
    trainer.run(4, callback=lambda t, row: rows.append(row))
    assert trainer.step == 4 and len(rows) == 4
    assert gan.opt_d.t == 12 and gan.opt_g.t == 4
    assert list(trainer.history) == list(HISTORY_KEYS)
    assert trainer.history["step"] == [1, 2, 3, 4]
    # 40 images in batches of 5: 8 per epoch; 12 real batches end epoch 1.
    assert trainer.epoch == 1
    assert all(np.isfinite(trainer.history[k]).all() for k in HISTORY_KEYS)


def test_trainer_same_seed_same_run():
    images = np.random.default_rng(0).integers(0, 256, (30, 6), dtype=np.uint8)
    runs = []
    for _ in range(2):
        gan = small_gan(seed=3)
        trainer = Trainer(gan, images, rng=np.random.default_rng(4))
        trainer.run(5)
        runs.append((trainer.history, gan.G.state_dict()))
    assert runs[0][0] == runs[1][0]
    for name, value in runs[0][1].items():
        assert value.tobytes() == runs[1][1][name].tobytes()


def test_trainer_stops_on_non_finite_values_naming_the_step():
    gan = small_gan()
    images = np.zeros((20, 6), np.uint8)
    trainer = Trainer(gan, images, rng=np.random.default_rng(0))
    trainer.run(2)
    gan.D.params["0.W"][0, 0] = np.nan
    with pytest.raises(
        NonFiniteError, match="step 3: discriminator logits are not finite"
    ):
        trainer.run(1)
    assert trainer.step == 2 and len(trainer.history["step"]) == 2
    with pytest.raises(NonFiniteError, match="discriminator parameter '0.W'"):
        gan.check_finite()


def test_trainer_rejects_mismatched_images():
    gan = small_gan()
    with pytest.raises(ValueError, match="6"):
        Trainer(gan, np.zeros((10, 7), np.uint8), rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="uint8"):
        Trainer(gan, np.zeros((10, 6)), rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("k", 0, "k must be an integer >= 1, got 0"),
        ("lr_g", 0.0, "lr_g must be a positive number, got 0.0"),
        ("lr_d", -1e-3, "lr_d must be a positive number"),
        ("beta1", 1.0, r"beta1 must lie in \[0, 1\), got 1.0"),
        ("beta2", -0.1, r"beta2 must lie in \[0, 1\)"),
        ("loss", "wgan", "loss must be one of"),
        ("g_hidden", (8, 0), "g_hidden must be a tuple of integers >= 1"),
        ("dtype", "float16", "dtype must be one of"),
    ],
)
def test_config_rejects_out_of_range_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        GANConfig(**{field: value})


def test_config_round_trips_through_a_dict():
    config = GANConfig(g_hidden=[8, 16], k=2)
    assert config.g_hidden == (8, 16)
    assert GANConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        GANConfig.from_dict({"depth": 3})


def test_training_never_touches_numpy_global_random_state():
    np.random.seed(1234)  # the one place that sets it: to compare against
    before = np.random.get_state()
    gan = small_gan(ema=0.9)
    images = np.random.default_rng(0).integers(0, 256, (20, 6), dtype=np.uint8)
    Trainer(gan, images, rng=np.random.default_rng(1)).run(3)
    gan.generate(gan.noise(2, np.random.default_rng(2)))
    after = np.random.get_state()
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])
