"""Tests of npgan.theory: the paper's claims on closed-form 1D densities.

These tests do not touch the networks; tests/test_theory_nets.py checks the
claims that involve npgan layers.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate as sp_integrate
from scipy import stats

from npgan import theory as T

LOG4 = math.log(4.0)
LOG2 = math.log(2.0)

means = st.floats(-5.0, 5.0, allow_nan=False)
stds = st.floats(0.2, 3.0, allow_nan=False)


@st.composite
def mixtures(draw, max_components=3):
    k = draw(st.integers(1, max_components))
    mu = draw(st.lists(means, min_size=k, max_size=k))
    sd = draw(st.lists(stds, min_size=k, max_size=k))
    w = draw(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k))
    return T.GaussianMixture(mu, sd, w)


# ---------------------------------------------------------------------------
# Densities and quadrature
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(mixtures(), st.floats(-20.0, 20.0))
def test_mixture_logpdf_matches_scipy(p, x):
    expected = np.sum(p.weights * stats.norm.pdf(x, p.means, p.stds))
    assert p.pdf(np.array([x]))[0] == pytest.approx(expected, rel=1e-12, abs=1e-300)


@settings(max_examples=30, deadline=None)
@given(mixtures(), st.floats(-10.0, 10.0))
def test_mixture_score_matches_finite_difference(p, x):
    h = 1e-5
    fd = (p.logpdf(x + h) - p.logpdf(x - h)) / (2 * h)
    assert p.score(x) == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_mixture_sample_moments_match_density():
    rng = np.random.default_rng(0)
    p = T.GaussianMixture([-2.0, 3.0], [0.5, 1.0], [0.3, 0.7])
    x = p.sample(200_000, rng=rng)
    mean = float(np.sum(p.weights * p.means))
    var = float(np.sum(p.weights * (p.stds**2 + p.means**2))) - mean**2
    # standard errors: sqrt(var / n) ~ 0.006 and ~0.01 for the variance
    assert x.mean() == pytest.approx(mean, abs=0.03)
    assert x.var() == pytest.approx(var, abs=0.06)


@settings(max_examples=30, deadline=None)
@given(mixtures())
def test_integrate_recovers_mass_and_second_moment(p):
    lo, hi = p.interval()
    mass = T.integrate(p.pdf, lo, hi, scale=p.min_std)
    m2 = T.integrate(lambda x: x * x * p.pdf(x), lo, hi, scale=p.min_std)
    assert mass.value == pytest.approx(1.0, abs=1e-10)
    assert mass.error <= 1e-10
    expected_m2 = float(np.sum(p.weights * (p.stds**2 + p.means**2)))
    assert m2.value == pytest.approx(expected_m2, abs=1e-9)


def test_integrate_warns_when_accuracy_not_reached():
    rng = np.random.default_rng(1)
    with pytest.warns(RuntimeWarning, match="above atol"):
        res = T.integrate(lambda x: rng.standard_normal(x.shape), 0.0, 1.0)
    assert res.error > 1e-10


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match="stds must be > 0"):
        T.GaussianMixture([0.0], [0.0])
    with pytest.raises(ValueError, match="equal length"):
        T.GaussianMixture([0.0, 1.0], [1.0])
    with pytest.raises(TypeError, match="Generator"):
        T.Gaussian(0, 1).sample(3, rng=0)


# ---------------------------------------------------------------------------
# Claim 1: D*(x) = p_data / (p_data + p_g) maximises V(D, G)
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(mixtures(), mixtures(), st.floats(-8.0, 8.0))
def test_optimal_discriminator_is_density_ratio(p, q, x):
    pd, pg = p.pdf(x), q.pdf(x)
    d = T.optimal_discriminator(p, q, np.array([x]))[0]
    assert d == pytest.approx(pd / (pd + pg), rel=1e-9)
    assert T.optimal_discriminator(p, p, np.array([x]))[0] == 0.5


@settings(max_examples=40, deadline=None)
@given(
    mixtures(),
    mixtures(),
    st.floats(-3.0, 3.0),
    st.floats(-1.0, 1.0),
    st.floats(0.1, 3.0),
)
def test_optimal_discriminator_maximises_value(p, q, shift, amp, freq):
    """Any smooth change of D*'s logit lowers V, by exactly the mean KL.

    V(D*, G) - V(D, G) = integral of (p_data + p_g)(x) times
    KL(Bernoulli(D*(x)) || Bernoulli(D(x))), which is >= 0 and is 0 only
    where D = D*.
    """

    def best(x):
        return T.optimal_discriminator_logit(p, q, x)

    def other(x):
        return best(x) + shift + amp * np.sin(freq * x)

    v_best = T.value_function(best, p, q)
    v_other = T.value_function(other, p, q)
    assert v_other <= v_best + 1e-9

    def weighted_kl(x):
        lb, lo = best(x), other(x)
        a = T.sigmoid(lb)
        kl = a * (T.log_sigmoid(lb) - T.log_sigmoid(lo))
        kl += (1 - a) * (T.log_sigmoid(-lb) - T.log_sigmoid(-lo))
        return (p.pdf(x) + q.pdf(x)) * kl

    lo_p, hi_p = p.interval()
    lo_q, hi_q = q.interval()
    gap = T.integrate(
        weighted_kl,
        min(lo_p, lo_q),
        max(hi_p, hi_q),
        scale=min(p.min_std, q.min_std),
    )
    assert v_best - v_other == pytest.approx(gap.value, abs=1e-9)
    if abs(shift) >= 0.01 or abs(amp) >= 0.01:
        assert gap.value > 0  # strictly worse than D*


# ---------------------------------------------------------------------------
# Claim 2: V(D*, G) = -log 4 + 2 JSD(p_data || p_g)
# ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(mixtures(), mixtures())
def test_optimal_value_is_minus_log4_plus_twice_jsd(p, q):
    v = T.optimal_value(p, q)
    j = T.jsd(p, q)
    assert v == pytest.approx(-LOG4 + 2.0 * j, abs=1e-9)
    assert v >= -LOG4 - 1e-9
    assert -1e-10 <= j <= LOG2 + 1e-10
    assert T.jsd(q, p) == pytest.approx(j, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(mixtures())
def test_optimal_value_is_minus_log4_at_identical_distributions(p):
    assert T.optimal_value(p, p) == pytest.approx(-LOG4, abs=1e-10)
    assert T.jsd(p, p) == pytest.approx(0.0, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(means, stds, st.floats(0.1, 3.0), st.sampled_from([-1.0, 1.0]))
def test_optimal_value_above_minus_log4_when_distributions_differ(mu, sd, dmu, sign):
    p = T.Gaussian(mu, sd)
    q = T.Gaussian(mu + sign * dmu, sd)
    # Pinsker on each half, KL(p || m) >= 2 TV(p, m)^2 = TV(p, q)^2 / 2,
    # gives JSD >= TV^2 / 2; for equal variances TV = 2 Phi(dmu / 2 sd) - 1
    tv = 2.0 * stats.norm.cdf(dmu / (2.0 * sd)) - 1.0
    assert T.jsd(p, q) >= 0.5 * tv**2 - 1e-12
    assert T.optimal_value(p, q) > -LOG4 + 1e-6


@settings(max_examples=20, deadline=None)
@given(means, stds, means, stds)
def test_jsd_matches_independent_simpson(m1, s1, m2, s2):
    """An independent rule (Simpson, 400001 points) on the textbook formula."""
    p, q = T.Gaussian(m1, s1), T.Gaussian(m2, s2)
    lo, hi = min(m1 - 10 * s1, m2 - 10 * s2), max(m1 + 10 * s1, m2 + 10 * s2)
    x = np.linspace(lo, hi, 400_001)
    a, b = stats.norm.pdf(x, m1, s1), stats.norm.pdf(x, m2, s2)
    m = 0.5 * (a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 0.5 * np.where(a > 0, a * np.log(a / m), 0.0)
        f += 0.5 * np.where(b > 0, b * np.log(b / m), 0.0)
    ref = sp_integrate.simpson(f, x=x)
    assert T.jsd(p, q) == pytest.approx(ref, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.05, 1.0), min_size=2, max_size=5),
    st.lists(st.floats(0.05, 1.0), min_size=2, max_size=5),
)
def test_jsd_matches_closed_form_on_separated_modes(wp, wq):
    """Modes 40 std apart: JSD = sum_k of the two-point JSD terms."""
    k = min(len(wp), len(wq))
    wp, wq = np.array(wp[:k]), np.array(wq[:k])
    wp, wq = wp / wp.sum(), wq / wq.sum()
    mu = 40.0 * np.arange(k)
    p = T.GaussianMixture(mu, np.ones(k), wp)
    q = T.GaussianMixture(mu, np.ones(k), wq)
    m = 0.5 * (wp + wq)
    expected = 0.5 * np.sum(wp * np.log(wp / m)) + 0.5 * np.sum(wq * np.log(wq / m))
    assert T.jsd(p, q) == pytest.approx(expected, abs=1e-10)
    assert T.optimal_value(p, q) == pytest.approx(-LOG4 + 2 * expected, abs=1e-9)


def test_jsd_reaches_log2_on_disjoint_supports():
    p, q = T.Gaussian(-60.0, 1.0), T.Gaussian(60.0, 1.0)
    assert T.jsd(p, q) == pytest.approx(LOG2, abs=1e-12)
    assert T.optimal_value(p, q) == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------------------
# Claim 3: the minimax generator loss saturates
# ---------------------------------------------------------------------------

logits_30 = st.floats(-30.0, 30.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(logits_30)
def test_generator_loss_grad_ratio_is_odds(logit):
    lg = np.array([logit])
    g_mm = T.generator_loss_grad(lg, "minimax")[0]
    g_ns = T.generator_loss_grad(lg, "non-saturating")[0]
    d = 1.0 / (1.0 + math.exp(-logit))
    one_minus_d = 1.0 / (1.0 + math.exp(logit))
    assert g_mm == pytest.approx(-d, rel=1e-13)
    assert g_ns == pytest.approx(-one_minus_d, rel=1e-13)
    assert g_mm / g_ns == pytest.approx(d / one_minus_d, rel=1e-12)
    assert g_mm / g_ns == pytest.approx(T.saturation_ratio(lg)[0], rel=1e-12)
    if d <= 1e-3:
        assert abs(g_mm) <= 1.001001e-3 * abs(g_ns) * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(logits_30, st.sampled_from(["minimax", "non-saturating"]))
def test_generator_loss_grad_matches_finite_difference(logit, kind):
    h = 1e-6
    lg = np.array([logit - h, logit + h])
    lo, hi = T.generator_loss_per_sample(lg, kind)
    fd = (hi - lo) / (2 * h)
    g = T.generator_loss_grad(np.array([logit]), kind)[0]
    assert g == pytest.approx(fd, rel=1e-5, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(logits_30)
def test_generator_loss_values_match_definitions(logit):
    d = 1.0 / (1.0 + math.exp(-logit))
    mm = T.generator_loss_per_sample(np.array([logit]), "minimax")[0]
    ns = T.generator_loss_per_sample(np.array([logit]), "non-saturating")[0]
    assert mm == pytest.approx(math.log1p(-d) if d < 0.5 else -logit + math.log(d))
    assert ns == pytest.approx(math.log1p(math.exp(-logit)), rel=1e-12)


def test_generator_loss_grad_keeps_float32():
    lg = np.linspace(-30, 30, 7, dtype=np.float32)
    for kind in ("minimax", "non-saturating"):
        assert T.generator_loss_grad(lg, kind).dtype == np.float32
        assert T.generator_loss_per_sample(lg, kind).dtype == np.float32
    with pytest.raises(ValueError, match="kind must be one of"):
        T.generator_loss_grad(lg, "wasserstein")


# ---------------------------------------------------------------------------
# Claim 4: a generator on one mode gets no pull towards the others
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 8),
    st.floats(20.0, 40.0),
    st.data(),
    st.sampled_from(["minimax", "non-saturating"]),
)
def test_collapsed_generator_gets_no_gradient_from_optimal_d(k, gap, data, kind):
    j = data.draw(st.integers(0, k - 1))
    p_data = T.GaussianMixture(gap * np.arange(k), np.ones(k))
    p_g = T.Gaussian(gap * j, 1.0)
    # D* on the covered mode is (1/k) / (1/k + 1) = 1 / (k + 1): G's samples
    # are rated as real as the data there
    d_star = T.optimal_discriminator(p_data, p_g, np.array([gap * j]))[0]
    assert d_star == pytest.approx(1.0 / (k + 1), rel=1e-9)
    # ... and the generator is far from p_data: closed-form JSD of the collapse
    w = 1.0 / k
    expected = 0.5 * ((k - 1) * w * LOG2 + w * math.log(2 * w / (w + 1)))
    expected += 0.5 * math.log(2 / (w + 1))
    assert T.jsd(p_data, p_g) == pytest.approx(expected, abs=1e-10)
    # yet the gradient pulling it anywhere is below 1e-12
    assert abs(T.generator_shift_gradient(p_data, p_g, kind)) < 1e-12


@settings(max_examples=30, deadline=None)
@given(st.floats(1.0, 8.0))
def test_generator_between_modes_is_pulled(offset):
    """Contrast: off a mode, D* does push G, towards the nearer mode.

    With the minimax loss the push is weaker, and vanishes as G moves into
    the region where D* rejects its samples (claim 3 seen through D*).
    """
    p_data = T.GaussianMixture([0.0, 20.0], [1.0, 1.0])
    p_g = T.Gaussian(offset, 1.0)
    g_ns = T.generator_shift_gradient(p_data, p_g, "non-saturating")
    g_mm = T.generator_shift_gradient(p_data, p_g, "minimax")
    assert g_ns > 0.5  # descent moves the shift towards 0, the nearer mode
    assert 0 < g_mm < g_ns


# ---------------------------------------------------------------------------
# Claim 5: gradient play on min_x max_y x*y
# ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3),
    st.floats(-5, 5),
    st.floats(0.01, 0.5),
)
def test_simultaneous_play_spirals_out(x0, y0, lr):
    xs, ys = T.bilinear_game(x0, y0, lr=lr, steps=200, mode="simultaneous")
    r = np.hypot(xs, ys)
    t = np.arange(201)
    np.testing.assert_allclose(r, r[0] * (1 + lr * lr) ** (t / 2), rtol=1e-12)
    assert np.all(np.diff(r) > 0)


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3),
    st.floats(-5, 5),
    st.floats(0.05, 1.0),
)
def test_alternating_play_circles(x0, y0, lr):
    steps = int(4 * math.pi / lr) + 10  # long enough for two turns
    xs, ys = T.bilinear_game(x0, y0, lr=lr, steps=steps, mode="alternating")
    q = T.bilinear_invariant(xs, ys, lr)
    np.testing.assert_allclose(q, q[0], rtol=1e-10)
    r2 = xs**2 + ys**2
    # never closer than the ellipse allows, never further: no convergence
    assert r2.min() >= q[0] / (1 + lr / 2) * (1 - 1e-10)
    assert r2.max() <= q[0] / (1 - lr / 2) * (1 + 1e-10)
    # and it goes round: at least one full turn (each step turns by
    # 2 arcsin(lr / 2) < pi, so unwrapping the angle is unambiguous)
    turned = np.unwrap(np.arctan2(ys, xs))
    assert abs(turned[-1] - turned[0]) >= 2 * math.pi


def test_bilinear_game_first_steps_by_hand():
    xs, ys = T.bilinear_game(1.0, 2.0, lr=0.5, steps=2, mode="simultaneous")
    # (1, 2) -> (1 - 1, 2 + 0.5) = (0, 2.5) -> (0 - 1.25, 2.5 + 0) = (-1.25, 2.5)
    np.testing.assert_allclose(xs, [1.0, 0.0, -1.25])
    np.testing.assert_allclose(ys, [2.0, 2.5, 2.5])
    xs, ys = T.bilinear_game(1.0, 2.0, lr=0.5, steps=2, mode="alternating")
    # (1, 2) -> x = 0, y = 2 + 0 = 2 -> x = -1, y = 2 - 0.5 = 1.5
    np.testing.assert_allclose(xs, [1.0, 0.0, -1.0])
    np.testing.assert_allclose(ys, [2.0, 2.0, 1.5])
    with pytest.raises(ValueError, match="mode must be"):
        T.bilinear_game(1.0, 2.0, lr=0.5, steps=2, mode="extragradient")
