"""The benchmarks run end to end at a tiny size (a smoke test, not a timing)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from npgan import _parallel
from npgan.gan import GAN, GANConfig

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_step():
    yield load("bench_step")
    _parallel.set_num_threads(None)


def test_bench_step_flop_count_is_32_mflop_per_sample_for_the_mlp_gan(bench_step):
    g = 100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784
    d = 784 * 1024 + 1024 * 512 + 512 * 256 + 256 * 1
    # D step: G forward, D forward and weight gradients on 2N rows, input
    # gradients of D but its first layer on 2N rows. G step: G and D forward,
    # D input gradients, G weight gradients and input gradients but the first.
    per_sample = 2 * (g + 2 * d + 2 * d + 2 * (d - 784 * 1024))
    per_sample += 2 * (g + d + d + g + (g - 100 * 256))
    shapes = bench_step.matmul_shapes(GANConfig(), 64)
    assert bench_step.flops(shapes) == 64 * per_sample
    assert round(per_sample / 1e6) == 32


def test_bench_step_runs_tiny_and_reports_every_batch(bench_step, capsys, tmp_path):
    report = bench_step.main(
        [
            "--tiny",
            "--no-torch",
            "--breakdown",
            "--threads",
            "1",
            "--rounds",
            "3",
            "--warmup",
            "1",
            "--sample-time",
            "0",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    out = capsys.readouterr().out
    assert [r["batch"] for r in report["results"]] == [4, 8]
    for r in report["results"]:
        assert set(r["seconds"]) == {
            "npgan",
            "floor",
            "floor-products",
            "floor-traffic",
            "npgan-adam",
        }
        for s in r["seconds"].values():
            assert 0 < s["min"] <= s["median"] <= s["max"]
        assert r["floor_fraction"]["median"] > 0
    assert "| batch | npgan it/s" in out and "\n| 8 | " in out
    assert "| batch | npgan ms | matrix products ms |" in out
    assert (tmp_path / "r.json").stat().st_size > 0


def test_bench_step_torch_copy_computes_the_same_networks(bench_step):
    torch = pytest.importorskip("torch")
    gan = GAN(GANConfig(**bench_step.TINY, batch_size=4), rng=np.random.default_rng(0))
    G, D = bench_step.torch_networks(torch, gan)
    z = gan.noise(4, np.random.default_rng(1))
    x = gan.generate(z)
    with torch.no_grad():
        np.testing.assert_allclose(G(torch.from_numpy(z)).numpy(), x, atol=1e-5)
        np.testing.assert_allclose(
            D(torch.from_numpy(x)).numpy(), gan.D.forward(x), atol=1e-5
        )


def test_bench_step_runs_tiny_with_torch(bench_step, capsys):
    pytest.importorskip("torch")
    report = bench_step.main(
        ["--tiny", "--threads", "1", "--rounds", "2", "--warmup", "1"]
        + ["--sample-time", "0", "--batches", "4", "--breakdown"]
    )
    (r,) = report["results"]
    assert {"npgan", "floor", "torch-default", "torch-fused", "torch-adam"} <= set(
        r["seconds"]
    )
    assert r["ratio_vs_best_torch"]["median"] > 0
    assert "npgan / best torch" in capsys.readouterr().out


def test_bench_memory_runs_tiny_without_growth(capsys):
    bench_memory = load("bench_memory")
    report = bench_memory.main(["--tiny", "--steps", "60", "--batch", "8"])
    out = capsys.readouterr().out
    assert report["history_growth_bytes"] > 0  # the history grows by design
    # Nothing else does, once the first steps after the warm-up are past: a
    # batch leaked per step would be 54 arrays of 8 * 48 * 4 bytes.
    assert report["steady_growth_steps"] == 54
    assert report["steady_growth_bytes"] < 2048
    assert report["peak_rss_mib"] >= report["peak_rss_after_load_mib"] > 0
    assert "peak RSS at the end of the run" in out
