"""Smoke tests: each theory example runs at tiny size and writes its PNG."""

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
