"""Smoke tests: each theory example runs at tiny size and writes its PNG."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from paths import SHARED_MNIST, needs_shared_mnist

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def load_example(name):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000  # a real figure, not an empty canvas


def test_nash_example_spirals_and_circles(tmp_path, capsys):
    res = load_example("nash").main(["--out", str(tmp_path), "--steps", "30"])
    assert_png(tmp_path / "nash.png")
    s, a = res["simultaneous"], res["alternating"]
    assert s["final"] == pytest.approx(math.sqrt(2) * 1.01**15, rel=1e-12)
    lo, hi = a["bounds"]
    assert lo - 1e-12 <= a["min"] <= a["max"] <= hi + 1e-12
    assert a["invariant_drift"] < 1e-12
    out = capsys.readouterr().out
    assert "simultaneous: final distance" in out and "nash.png" in out


def test_toy_1d_example_runs_and_respects_the_theory(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "40", "--d-steps", "90"]
    argv += ["--g-steps", "5", "--kde-samples", "200", "--seed", "3"]
    res = load_example("toy_1d").main(argv)
    assert_png(tmp_path / "toy_1d.png")
    for key in "abcd":
        s = res[key]
        assert 0.0 <= s["jsd"] <= math.log(2)
        # claim 2 on the KDE of p_g, and claim 1: no D beats D*
        assert s["V_opt"] == pytest.approx(-math.log(4) + 2 * s["jsd"], abs=1e-6)
        assert s["V"] <= s["V_opt"] + 1e-6
    # training D with G fixed brings it closer to D*
    assert res["b"]["mean_abs_d_minus_dstar"] < res["a"]["mean_abs_d_minus_dstar"]
    assert "panel  JSD" in capsys.readouterr().out


def test_mode_collapse_example_runs_and_counts_sanely(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "60", "--every", "20", "--seed", "1"]
    res = load_example("mode_collapse").main(argv)
    assert_png(tmp_path / "mode_collapse.png")
    names = ("minimax", "non-saturating", "PacGAN (pack=2)")
    for name in names:
        log = res[name]
        assert log["step"][-1] == 60 and 20 in log["step"]
        assert all(0 <= m <= 8 for m in log["modes"])
        assert all(0.0 <= s <= 1.0 for s in log["share"])
        assert all(0.0 < d < 1.0 for d in log["d_fake"])
    out = capsys.readouterr().out
    assert all(name in out for name in names) and "mode_collapse.png" in out


def test_mode_collapse_coverage_counts_modes_of_p_data():
    """The metric itself: p_data covers 8 of 8, one Gaussian 1 of 8."""
    mc = load_example("mode_collapse")
    rng = np.random.default_rng(0)
    modes, share = mc.coverage(mc.sample_ring(2000, rng))
    assert modes == 8
    # mass within 3 sigma of a 2D isotropic Gaussian: 1 - exp(-9/2) = 0.989
    assert share == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    one = mc.CENTERS[3] + mc.STD * rng.standard_normal((2000, 2))
    assert mc.coverage(one)[0] == 1


MNIST_DIR = SHARED_MNIST


@needs_shared_mnist
def test_vanishing_gradient_example_shows_saturation(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "4", "--d-warmup", "150"]
    argv += ["--hidden", "32", "--batch", "32", "--data", str(MNIST_DIR)]
    res = load_example("vanishing_gradient").main(argv)
    assert_png(tmp_path / "vanishing_gradient.png")
    for kind in ("minimax", "non-saturating"):
        log = res["logs"][kind]
        assert len(log["d_fake"]) == 4
        assert all(np.isfinite(log["minimax"])) and all(
            np.isfinite(log["non-saturating"])
        )
        # after D's head start it rejects fakes, and the minimax gradient is
        # the smaller one by about the odds D / (1 - D)
        assert log["d_fake"][0] < 0.2
        assert log["minimax"][0] < 0.25 * log["non-saturating"][0]
    assert "ratio" in capsys.readouterr().out
