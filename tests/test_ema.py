"""The moving average of the generator's weights (``GANConfig.ema``)."""

import numpy as np
import pytest

from npgan import checkpoint, cli
from npgan.errors import CheckpointError, ConfigError
from npgan.gan import GAN, GANConfig
from npgan.metrics import load_generator
from npgan.runner import load_model, save_model
from npgan.train import Trainer

SMALL = {"z_dim": 4, "data_dim": 6, "g_hidden": (8,), "d_hidden": (8,), "batch_size": 5}
IMAGES = np.random.default_rng(0).integers(0, 256, (23, 6), dtype=np.uint8)


def small_gan(seed=0, **overrides):
    return GAN(GANConfig(**{**SMALL, **overrides}), rng=np.random.default_rng(seed))


def trainer(ema, steps, seed=0, dtype="float32"):
    gan = small_gan(seed, ema=ema, dtype=dtype)
    t = Trainer(gan, IMAGES, rng=np.random.default_rng(seed + 1))
    t.run(steps)
    return t


def assert_nets_equal(a, b):
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        assert a.params[name].dtype == b.params[name].dtype, name
        assert a.params[name].tobytes() == b.params[name].tobytes(), name


def test_ema_zero_keeps_no_average_and_samples_from_g():
    gan = small_gan()
    assert gan.config.ema == 0.0 and gan.G_ema is None and gan.sampler_net() is gan.G
    z = gan.noise(3, np.random.default_rng(1))
    assert gan.generate(z).tobytes() == gan.G.forward(z).tobytes()


def test_ema_does_not_change_initial_weights_or_the_training_run():
    # Building the average draws nothing from the rng, and updating it never
    # touches G, D or the random stream: both runs train identically.
    plain, averaged = trainer(0.0, 9), trainer(0.9, 9)
    assert_nets_equal(plain.gan.G, averaged.gan.G)
    assert_nets_equal(plain.gan.D, averaged.gan.D)
    assert plain.history == averaged.history
    assert plain.rng.bit_generator.state == averaged.rng.bit_generator.state
    fresh = small_gan(ema=0.9)
    assert_nets_equal(fresh.G, fresh.G_ema)
    assert all(fresh.G.params[k] is not fresh.G_ema.params[k] for k in fresh.G.params)


@pytest.mark.parametrize("ema", [0.5, 0.999])
def test_ema_update_matches_the_formula_in_float64(ema):
    gan = small_gan(ema=ema, dtype="float64")
    rng = np.random.default_rng(2)
    t = Trainer(gan, IMAGES, rng=rng)
    t.run(3)
    before = {k: v.copy() for k, v in gan.G_ema.params.items()}
    t.run(1)  # the 4th generator step
    beta = min(ema, (1 + 4) / (10 + 4))
    for name, avg in gan.G_ema.params.items():
        expected = beta * before[name] + (1 - beta) * gan.G.params[name]
        np.testing.assert_allclose(avg, expected, rtol=1e-14, atol=1e-15)
        assert not np.array_equal(avg, gan.G.params[name])
    assert gan.sampler_net() is gan.G_ema
    z = gan.noise(2, rng)
    assert gan.generate(z).tobytes() == gan.G_ema.forward(z).tobytes()


def test_ema_warm_up_reaches_the_configured_decay():
    # With ema=0.5 the warm-up (1+t)/(10+t) is above 0.5 from t=9: the first
    # step uses beta=2/11, the 20th uses 0.5.
    gan = small_gan(ema=0.5, dtype="float64")
    t = Trainer(gan, IMAGES, rng=np.random.default_rng(3))
    t.run(19)
    before = {k: v.copy() for k, v in gan.G_ema.params.items()}
    t.run(1)
    for name, avg in gan.G_ema.params.items():
        expected = 0.5 * before[name] + 0.5 * gan.G.params[name]
        np.testing.assert_allclose(avg, expected, rtol=1e-14, atol=1e-15)


def test_ema_stays_float32_and_is_unchanged_by_a_discriminator_step():
    gan = small_gan(ema=0.9)
    rng = np.random.default_rng(4)
    gan.generator_step(rng)
    before = gan.G_ema.state_dict()
    real = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
    gan.discriminator_step(real, rng)
    for name, value in before.items():
        assert gan.G_ema.params[name].dtype == np.float32
        assert gan.G_ema.params[name].tobytes() == value.tobytes(), name


@pytest.mark.parametrize("value", [1.0, -0.1, 2])
def test_config_rejects_ema_outside_unit_interval(value):
    with pytest.raises(ConfigError, match=r"ema must lie in \[0, 1\)"):
        GANConfig(ema=value)


def test_ema_checkpoint_round_trip_restores_the_average(tmp_path):
    straight = trainer(0.9, 10)
    first = trainer(0.9, 5)
    path = checkpoint.write(tmp_path / "half.npz", first)
    with np.load(path, allow_pickle=False) as archive:
        assert archive["G_ema/0.W"].tobytes() == first.gan.G_ema.params["0.W"].tobytes()
    second = trainer(0.9, 0, seed=7)
    checkpoint.restore(second, path)
    assert_nets_equal(second.gan.G_ema, first.gan.G_ema)
    second.run(5)
    for net in ("G", "D", "G_ema"):
        assert_nets_equal(getattr(second.gan, net), getattr(straight.gan, net))


def test_ema_restore_refuses_a_checkpoint_of_another_decay(tmp_path):
    path = checkpoint.write(tmp_path / "c.npz", trainer(0.9, 2))
    with pytest.raises(CheckpointError, match="ema 0.9 \\(checkpoint\\) vs 0.0"):
        checkpoint.restore(trainer(0.0, 0), path)


def test_ema_model_file_and_loaders_sample_from_the_average(tmp_path):
    t = trainer(0.9, 6)
    save_model(tmp_path / "model.npz", t.gan, step=6)
    ck = checkpoint.write(tmp_path / "checkpoint-6.npz", t)
    z = t.gan.noise(4, np.random.default_rng(5))
    expected = t.gan.G_ema.forward(z)
    assert not np.array_equal(expected, t.gan.G.forward(z))
    back = load_model(tmp_path / "model.npz")
    assert_nets_equal(back.G, t.gan.G)
    assert_nets_equal(back.G_ema, t.gan.G_ema)
    assert back.generate(z).tobytes() == expected.tobytes()
    for path in (tmp_path / "model.npz", ck):
        assert load_generator(path).generate(z).tobytes() == expected.tobytes()


def test_cli_ema_flag_sets_the_config_and_rejects_out_of_range(capsys):
    def config(*argv):
        return cli.config_from_args(cli.build_parser().parse_args(["train", *argv]))

    assert config().ema == cli.TRAIN_DEFAULTS["ema"]
    assert config("--ema", "0.5").ema == 0.5
    assert config("--ema", "0").ema == 0.0
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["train", "--ema", "1"])
    assert exit_info.value.code == 2
    assert "expected a number in [0, 1), got 1" in capsys.readouterr().err
