"""Tests of npgan.metrics: every metric against inputs with a known answer."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paths import SHARED_MNIST
from scipy import stats
from scipy.special import logsumexp

from npgan import metrics as M
from npgan.data import load_dataset, to_unit
from npgan.gan import GAN, GANConfig

MNIST_DIR = SHARED_MNIST


# ---------------------------------------------------------------------------
# Fixtures with real digits
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_digits():
    if MNIST_DIR is None:
        pytest.skip("MNIST test split not found beside the repository")
    ds = load_dataset("mnist", "test", data_dir=MNIST_DIR)
    return np.asarray(ds.images), np.asarray(ds.labels)


@pytest.fixture(scope="module")
def held_out(test_digits):
    """The 5,000 test digits the shipped classifier never saw, shuffled.

    Shuffled because MNIST's test file is not exchangeable: its first and
    second 5,000 digits differ (classifier FD ~33 between them, ~1.5 between
    random halves), so halves in file order are not two samples of one
    distribution.
    """
    images, labels = test_digits
    _, held = M.split_test_digits(len(images))
    held = np.random.default_rng(27).permutation(held)
    return images[held], labels[held]


@pytest.fixture(scope="module")
def classifier():
    return M.load_classifier()


@pytest.fixture(scope="module")
def real_stats(classifier, held_out):
    """Gaussian fit of the features of the first 2,500 held-out digits."""
    return M.gaussian_stats(classifier.features(held_out[0][:2500]))


def _random_spd(rng, f):
    a = rng.standard_normal((f, f))
    return a @ a.T / f + 0.1 * np.eye(f)


# ---------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------


def test_frechet_distance_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(20), _random_spd(rng, 20)
    assert M.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


@given(
    m1=st.floats(-5, 5),
    m2=st.floats(-5, 5),
    s1=st.floats(0.01, 5),
    s2=st.floats(0.01, 5),
)
def test_frechet_distance_1d_matches_closed_form(m1, m2, s1, s2):
    # For 1D Gaussians: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations.
    d = M.frechet_distance([m1], [[s1 * s1]], [m2], [[s2 * s2]])
    assert d == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-9, abs=1e-9)


def test_frechet_distance_commuting_covariances_match_closed_form():
    # Covariances sharing an eigenbasis Q: sum over eigenvalues of
    # (sqrt(a_i) - sqrt(b_i))^2, plus the squared mean difference.
    rng = np.random.default_rng(1)
    f = 12
    q, _ = np.linalg.qr(rng.standard_normal((f, f)))
    a, b = rng.uniform(0.1, 4, f), rng.uniform(0.1, 4, f)
    mu1, mu2 = rng.standard_normal(f), rng.standard_normal(f)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    d = M.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert d == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_singular_covariances_stay_exact():
    # Rank-deficient diagonal covariances (dead features): still closed form.
    a = np.array([2.0, 0.0, 1.0, 0.0])
    b = np.array([0.5, 0.0, 0.0, 3.0])
    d = M.frechet_distance(np.zeros(4), np.diag(a), np.ones(4), np.diag(b))
    assert d == pytest.approx(4 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-6)


def test_frechet_distance_is_symmetric():
    rng = np.random.default_rng(2)
    s1, s2 = _random_spd(rng, 8), _random_spd(rng, 8)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        M.frechet_distance(mu2, s2, mu1, s1), rel=1e-9
    )


def test_frechet_distance_regularises_non_finite_sqrtm(monkeypatch):
    calls = []
    real_sqrtm = M.linalg.sqrtm

    def flaky_sqrtm(a):
        calls.append(a.copy())
        if len(calls) == 1:
            return np.full_like(a, np.nan)
        return real_sqrtm(a)

    monkeypatch.setattr(M.linalg, "sqrtm", flaky_sqrtm)
    sigma = np.diag([1.0, 4.0])
    with pytest.warns(RuntimeWarning, match="adding 0.01"):
        d = M.frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma, eps=0.01)
    # The retry used sigma + eps I on both sides.
    assert np.allclose(
        calls[1], (sigma + 0.01 * np.eye(2)) @ (sigma + 0.01 * np.eye(2))
    )
    # tr(S1) + tr(S2) - 2 tr(S + eps I) = -2 eps * 2, clipped at zero.
    assert d == 0.0


def test_frechet_distance_rejects_non_psd_covariance():
    # diag(1, -1) is not a covariance.
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        M.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_frechet_distance_of_rank_deficient_covariances_is_exact():
    # Fewer samples than features: both covariances are singular, and the
    # product's sqrtm carries large imaginary noise. Known answer: for
    # S1 = u u^T and S2 = v v^T, tr(sqrtm(S1 S2)) = |u . v|.
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(40), rng.standard_normal(40)
    s1, s2 = np.outer(u, u), np.outer(v, v)
    d = M.frechet_distance(np.zeros(40), s1, np.zeros(40), s2)
    # The zero eigenvalues come back as rounding noise of about 1e-14, whose
    # square roots (1e-7 each) bound the accuracy.
    assert d == pytest.approx(u @ u + v @ v - 2 * abs(u @ v), rel=1e-6)
    # Samples of rank 10 in 40 dimensions against themselves: distance 0.
    x = rng.standard_normal((10, 40))
    cov = np.cov(x, rowvar=False)
    assert M.frechet_distance(x.mean(0), cov, x.mean(0), cov) == pytest.approx(
        0.0, abs=1e-5
    )


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="covariances must have shape"):
        M.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_gaussian_stats_matches_numpy():
    x = np.random.default_rng(3).standard_normal((50, 4))
    mu, sigma = M.gaussian_stats(x)
    assert np.allclose(mu, x.mean(axis=0))
    assert np.allclose(sigma, np.cov(x.T))


def test_classifier_frechet_distance_orders_real_noise_digit_and_random_generator(
    classifier, held_out, real_stats
):
    # Observed with the shipped weights, 2,500 vs 2,500 digits: random halves
    # 3.6, uniform noise 586, one repeated digit 747-1025 (depends on the
    # digit), an untrained default generator 861. So the order is
    # halves << noise < {one digit, random generator}; the last two overlap.
    images = held_out[0]
    rng = np.random.default_rng(4)

    def fd(x):
        return M.frechet_distance(
            *M.gaussian_stats(classifier.features(x)), *real_stats
        )

    halves = fd(images[2500:])  # disjoint from the 2,500 of real_stats
    noise = fd(rng.uniform(-1, 1, (2500, 784)).astype(np.float32))
    one_digit = [fd(np.repeat(images[i : i + 1], 2500, axis=0)) for i in range(3)]
    gan = GAN(GANConfig(), rng=np.random.default_rng(5))
    random_g = fd(gan.generate(gan.noise(2500, rng)))
    assert halves < 0.02 * noise
    assert noise < 0.9 * min(*one_digit, random_g)


# ---------------------------------------------------------------------------
# Classifier score and mode coverage
# ---------------------------------------------------------------------------


def test_classifier_score_certain_and_uniform_over_ten_classes_is_ten():
    probs = np.eye(10)[np.arange(1000) % 10]
    assert M.classifier_score(probs) == pytest.approx(10.0, rel=1e-12)


@given(k=st.integers(1, 10))
def test_classifier_score_certain_over_k_equal_classes_is_k(k):
    probs = np.eye(10)[np.arange(10 * k) % k]
    assert M.classifier_score(probs) == pytest.approx(k, rel=1e-12)


def test_classifier_score_constant_prediction_is_one():
    row = np.random.default_rng(6).dirichlet(np.ones(10))
    assert M.classifier_score(np.tile(row, (100, 1))) == pytest.approx(1.0, abs=1e-12)


def test_classifier_score_rejects_rows_not_summing_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        M.classifier_score(np.full((3, 10), 0.2))


def test_mode_coverage_uniform_histogram_is_not_collapsed():
    r = M.mode_coverage(np.arange(1000) % 10)
    assert r["histogram"] == [100] * 10
    assert r["classes_covered"] == 10
    assert r["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert r["effective_classes"] == pytest.approx(10.0)
    assert not r["collapsed"]


def test_mode_coverage_single_class_is_collapsed():
    probs = np.tile(np.eye(10)[3] * 0.9 + 0.01, (50, 1))
    r = M.mode_coverage(probs)
    assert r["histogram"] == [0, 0, 0, 50, 0, 0, 0, 0, 0, 0]
    assert r["classes_covered"] == 1
    assert r["kl_uniform"] == pytest.approx(math.log(10))
    assert r["collapsed"]


def test_mode_coverage_stray_samples_do_not_count_as_covered():
    # 991 samples of class 0 and one of each other class: 1 < 10% of 100.
    labels = np.concatenate([np.zeros(991, dtype=int), np.arange(1, 10)])
    r = M.mode_coverage(labels)
    assert r["classes_covered"] == 1
    assert r["collapsed"]


def test_mode_coverage_four_equal_classes_are_collapsed_six_are_not():
    # effective classes = k for k equally used classes; the flag is k < 5.
    assert M.mode_coverage(np.arange(400) % 4)["collapsed"]
    assert not M.mode_coverage(np.arange(600) % 6)["collapsed"]


def test_mode_coverage_flags_repeated_real_digit_but_not_real_digits(
    classifier, held_out
):
    images = held_out[0][:2000]
    real = M.mode_coverage(classifier.predict_proba(images))
    one = M.mode_coverage(classifier.predict_proba(np.repeat(images[:1], 2000, 0)))
    assert not real["collapsed"] and real["classes_covered"] == 10
    assert real["kl_uniform"] < 0.02
    assert one["collapsed"] and one["classes_covered"] == 1


def test_classifier_score_of_real_digits_is_near_ten(classifier, held_out):
    score = M.classifier_score(classifier.predict_proba(held_out[0][:2000]))
    assert 9.0 < score <= 10.0


# ---------------------------------------------------------------------------
# Parzen window
# ---------------------------------------------------------------------------


def test_parzen_one_centre_equals_gaussian_log_density():
    rng = np.random.default_rng(7)
    centre = rng.standard_normal((1, 5))
    x = rng.standard_normal((20, 5))
    sigma = 0.7
    expected = stats.multivariate_normal(centre[0], sigma**2 * np.eye(5)).logpdf(x)
    got = M.parzen_log_likelihood(centre, x, sigma)
    assert np.allclose(got, expected, rtol=0, atol=1e-10)


def test_parzen_matches_direct_mixture_density():
    rng = np.random.default_rng(23)
    c, x, sigma = rng.standard_normal((30, 4)), rng.standard_normal((10, 4)), 0.3
    logpdfs = np.stack(
        [stats.multivariate_normal(ci, sigma**2 * np.eye(4)).logpdf(x) for ci in c]
    )  # (K, M)
    expected = logsumexp(logpdfs, axis=0) - math.log(len(c))
    got = M.parzen_log_likelihood(c, x, sigma)
    assert np.allclose(got, expected, rtol=0, atol=1e-9)


def test_parzen_is_the_same_in_any_batch_size():
    rng = np.random.default_rng(8)
    c, x = rng.standard_normal((40, 3)), rng.standard_normal((25, 3))
    a = M.parzen_log_likelihood(c, x, 0.5, batch_size=7)
    b = M.parzen_log_likelihood(c, x, 0.5, batch_size=1000)
    assert np.allclose(a, b, rtol=0, atol=1e-12)


def test_parzen_far_points_stay_finite():
    # Every kernel underflows to 0 in exp(): log-sum-exp keeps it finite.
    c = np.zeros((3, 2))
    ll = M.parzen_log_likelihood(c, np.array([[1e3, 0.0]]), 0.1)
    assert np.isfinite(ll[0])
    assert ll[0] == pytest.approx(-1e6 / 0.02 - math.log(2 * math.pi * 0.01))


def test_parzen_estimate_approaches_true_mean_log_density():
    # Samples of N(0, s^2 I_2): with many centres and the bandwidth chosen on
    # validation data, the estimate approaches E[log N(x; 0, s^2 I)].
    rng = np.random.default_rng(9)
    s, d = 0.5, 2
    centres = rng.normal(0, s, (10000, d))
    validation = rng.normal(0, s, (500, d))
    test = rng.normal(0, s, (2000, d))
    true = -0.5 * d * math.log(2 * math.pi * s * s) - 0.5 * d
    r = M.parzen_estimate(centres, validation, test, [0.03, 0.06, 0.12, 0.24])
    assert r["n_centres"] == 10000 and r["n_test"] == 2000
    assert abs(r["mean"] - true) < 0.05
    assert 0.01 < r["stderr"] < 0.05


def test_select_parzen_bandwidth_warns_at_grid_edge():
    rng = np.random.default_rng(10)
    c, v = rng.standard_normal((500, 2)), rng.standard_normal((200, 2))
    with pytest.warns(RuntimeWarning, match="end of the grid"):
        sigma, scores = M.select_parzen_bandwidth(c, v, [1e-3, 2e-3])
    assert sigma == 2e-3 and scores[2e-3] > scores[1e-3]


# ---------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(11)
    x, ref = rng.standard_normal((30, 6)), rng.standard_normal((50, 6))
    brute = np.sqrt(((x[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(1)
    assert np.allclose(M.nearest_distances(x, ref, batch_size=8), brute, atol=1e-9)


def test_memorisation_check_flags_copies_of_training_digits(test_digits):
    images = test_digits[0]
    train, held = images[:1000], images[1000:2000]
    rng = np.random.default_rng(12)
    copies = train[rng.choice(1000, 300)]
    r = M.memorisation_check(copies, train, held, rng=rng)
    assert r["median_train"] == 0.0 and r["copy_fraction"] == 1.0
    assert r["memorising"]


def test_memorisation_check_passes_unseen_real_digits(test_digits):
    images = test_digits[0]
    train, held, unseen = images[:1000], images[1000:2000], images[2000:2300]
    r = M.memorisation_check(unseen, train, held, rng=np.random.default_rng(13))
    assert r["copy_fraction"] == 0.0
    assert 0.8 < r["median_ratio"] < 1.25
    assert not r["memorising"]


# ---------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------


def test_shipped_classifier_reaches_96_percent_on_held_out_digits(classifier, held_out):
    acc = classifier.accuracy(*held_out)
    assert acc >= 0.96
    # The accuracy recorded with the weights is the one we measure.
    assert classifier.meta["held_out_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert M.default_weights_path().stat().st_size < 600 * 1024


def test_classifier_save_load_roundtrip(tmp_path):
    clf = M.build_classifier(rng=np.random.default_rng(14), sizes=(784, 16, 8, 10))
    clf.meta = {"note": "x"}
    clf.save(tmp_path / "c.npz", storage_dtype=np.float32)
    back = M.load_classifier(tmp_path / "c.npz")
    assert back.meta == {"note": "x"}
    x = np.random.default_rng(15).uniform(-1, 1, (5, 784)).astype(np.float32)
    assert np.array_equal(back.logits(x), clf.logits(x))
    assert back.features(x).shape == (5, 8)


def test_shift_translates_each_image_within_range():
    rng = np.random.default_rng(16)
    img = np.zeros((200, 28, 28), dtype=np.uint8)
    img[:, 14, 10] = 255
    out = M._shift(img, 2, rng)
    pos = np.argwhere(out == 255)
    assert len(pos) == 200  # every pixel survives the move
    dy, dx = pos[:, 1] - 14, pos[:, 2] - 10
    assert set(dy.tolist()) == set(range(-2, 3)) == set(dx.tolist())


def test_train_classifier_learns_real_digits(test_digits):
    images, labels = test_digits
    clf, history = M.train_classifier(
        images[:2000],
        labels[:2000],
        rng=np.random.default_rng(17),
        epochs=8,
        sizes=(784, 64, 32, 10),
        max_shift=1,
    )
    assert history[-1]["loss"] < history[0]["loss"]
    assert clf.accuracy(images[5000:6000], labels[5000:6000]) > 0.8


# ---------------------------------------------------------------------------
# Evaluating a generator
# ---------------------------------------------------------------------------


def _small_reference(test_digits):
    images = test_digits[0]
    return M.RealReference(
        held_out=images[:1000],
        validation=images[1000:1200],
        train=images[2000:3000],
    )


def test_evaluate_generator_flags_a_generator_that_emits_training_digits(
    test_digits, classifier
):
    ref = _small_reference(test_digits)

    def memoriser(m, rng):
        return ref.train[rng.integers(0, len(ref.train), m)]

    r = M.evaluate_generator(
        memoriser,
        500,
        np.random.default_rng(18),
        ref,
        classifier=classifier,
        parzen_test=200,
        memorisation_samples=200,
    )
    assert r["memorisation"]["memorising"]
    assert r["memorisation"]["median_train"] == 0.0
    assert not r["collapsed"] and r["classes_covered"] == 10
    assert r["parzen"]["n_centres"] == 500 and r["parzen"]["n_test"] == 200
    json.dumps(r)  # JSON-ready


def test_evaluate_generator_runs_on_a_gan(test_digits, classifier):
    ref = _small_reference(test_digits)
    gan = GAN(GANConfig(g_hidden=(32,), d_hidden=(32,)), rng=np.random.default_rng(19))
    r = M.evaluate_generator(
        gan,
        300,
        np.random.default_rng(20),
        ref,
        classifier=classifier,
        parzen_samples=0,
        memorisation_samples=100,
    )
    assert r["parzen"] is None
    assert r["fd"] > 10
    assert not r["memorisation"]["memorising"]


def test_load_generator_reads_model_files_and_checkpoints(tmp_path):
    config = GANConfig(g_hidden=(8,), d_hidden=(8,))
    gan = GAN(config, rng=np.random.default_rng(21))
    g = {f"G/{k}": v for k, v in gan.G.params.items()}
    np.savez(
        tmp_path / "model.npz",
        format=np.array(["npgan-model-v1"]),
        config=np.array([json.dumps(config.to_dict())]),
        **g,
    )
    np.savez(
        tmp_path / "checkpoint-7.npz",
        meta=np.asarray(json.dumps({"config": config.to_dict()})),
        **g,
    )
    z = gan.noise(4, np.random.default_rng(22))
    for path in (tmp_path / "model.npz", tmp_path / "checkpoint-7.npz", tmp_path):
        back = M.load_generator(path)
        assert np.array_equal(back.generate(z), gan.generate(z))


def test_to_unit_scale_is_what_the_classifier_expects(classifier, held_out):
    # uint8 input and its [-1, 1] float version give the same predictions.
    images = held_out[0][:50]
    assert np.array_equal(
        classifier.predict(images), classifier.predict(to_unit(images))
    )


# ---------------------------------------------------------------------------
# Metrics during training and the command line
# ---------------------------------------------------------------------------


def test_epoch_metrics_records_each_epoch_and_writes_files(
    test_digits, classifier, tmp_path
):
    from npgan.train import Trainer

    ref = _small_reference(test_digits)
    config = GANConfig(g_hidden=(16,), d_hidden=(16,), batch_size=50)
    gan = GAN(config, rng=np.random.default_rng(24))
    trainer = Trainer(gan, test_digits[0][:200], rng=np.random.default_rng(25))
    hook = M.EpochMetrics(ref, n=200, classifier=classifier, out_dir=tmp_path)
    trainer.run(12, callback=hook)  # 4 batches per epoch: epochs end at 4, 8, 12
    assert [(r["step"], r["epoch"]) for r in hook.records] == [
        (1, 0),
        (4, 1),
        (8, 2),
        (12, 3),
    ]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    # JSON writes each float's shortest repr, so the records come back equal.
    assert saved == hook.records
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    # The fixed noise makes a re-evaluation of the same generator identical.
    again = hook.evaluate(gan, step=12, epoch=3)
    assert again["fd"] == hook.records[-2]["fd"]  # records[-1] is `again` now


def test_cli_evaluate_writes_table_and_json(test_digits, tmp_path, capsys):
    from npgan import cli
    from npgan.runner import save_model

    gan = GAN(GANConfig(g_hidden=(16,), d_hidden=(16,)), rng=np.random.default_rng(26))
    save_model(tmp_path / "model.npz", gan, step=0)
    argv = [
        "evaluate", str(tmp_path / "model.npz"), "--data", str(MNIST_DIR),
        "-n", "300", "--parzen-test", "100", "--real",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| npgan GAN | 300 |" in out and "| real test digits | 300 |" in out
    assert "225 ± 2" in out
    report = json.loads((tmp_path / "evaluation.json").read_text())
    gan_row, real_row = (
        report["results"]["npgan GAN"],
        report["results"]["real test digits"],
    )
    assert real_row["fd"] < 0.2 * gan_row["fd"]
    assert real_row["classes_covered"] == 10
    assert not real_row["memorisation"]["memorising"]
    assert gan_row["parzen"]["n_test"] == 100


def test_cli_evaluate_missing_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    from npgan import cli

    assert cli.main(["evaluate", str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.npz" in err
