"""Time npgan's training iteration against PyTorch's CPU build, pair by pair.

One iteration is what ``Trainer.train_step`` does with the default MLP GAN
(G 100-256-512-1024-784, D 784-1024-512-256-1, LeakyReLU 0.2, tanh output,
BCE on logits, Adam): one discriminator step on a real batch and as many
fakes, then one non-saturating generator step, with the logged numbers
(losses, mean D(x), mean D(G(z)), the generator's gradient norm) read back.

Contenders, timed in turn within every round so that a burst of load from
elsewhere hits all of them alike, and each ratio is taken within one round:

``npgan``
    ``Trainer.train_step`` on uint8 images.
``floor``
    A practical floor measured here, on this machine: every matrix product
    of the iteration at its real shape and transposition, back to back, plus
    a pass that reads each network's parameters, gradients and two moments
    and writes three of them back (Adam's unavoidable memory traffic), in
    cache-sized pieces on the same threads.
``torch-default`` (when PyTorch is installed)
    The usual PyTorch loop: ``torch.optim.Adam`` with its defaults, D applied
    to the real and the fake batch separately, the generator step computing
    (and discarding) D's weight gradients.
``torch-fused``
    The same network with ``Adam(fused=True)``, one D pass on the real and
    fake batches concatenated, and D's parameters frozen during the generator
    step (as npgan's ``param_grads=False``).

Both frameworks start from the same weights and use float32 and the same
number of threads. Run ``python benchmarks/bench_step.py --help`` for the
options; ``--tiny`` is the smoke test run by the test suite.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

# Both libraries run in this one process, in turn. After its last call an
# idle OpenBLAS thread spins for 2^28 cycles (about 0.1 s) before it sleeps,
# taking a core from whatever runs next; PyTorch's OpenMP threads (libgomp)
# spin for about 300,000 iterations. 2^20 cycles (under a millisecond) keeps
# OpenBLAS's threads awake between the matrix products of one iteration but
# not into PyTorch's turn. Read when OpenBLAS loads, so set before numpy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

from npgan import _parallel  # noqa: E402
from npgan.gan import GAN, GANConfig  # noqa: E402
from npgan.optim import PIECE  # noqa: E402
from npgan.train import Trainer  # noqa: E402

TINY = {"z_dim": 8, "data_dim": 48, "g_hidden": (32, 64), "d_hidden": (64, 32)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--batches",
        type=int,
        nargs="+",
        help="batch sizes (default 32 64 128 256; 4 8 with --tiny)",
    )
    p.add_argument("--threads", type=int, default=2, help="BLAS and npgan threads")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds per batch")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations each")
    p.add_argument(
        "--sample-time",
        type=float,
        default=0.25,
        help="seconds of npgan iterations per timed sample (sets iterations/sample)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the floor's parts and npgan's Adam steps alone",
    )
    p.add_argument("--tiny", action="store_true", help="small network, smoke test")
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.batches is None:
        args.batches = [4, 8] if args.tiny else [32, 64, 128, 256]
    return args


# --------------------------------------------------------------------------
# Threads


def limit_threads(n):
    """Limit BLAS (via threadpoolctl when present) and npgan to ``n`` threads.

    Returns a description of the BLAS library in use, or None.
    """
    _parallel.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        print(
            "threadpoolctl is not installed: the BLAS library keeps its own "
            "thread count (set OPENBLAS_NUM_THREADS before starting)"
        )
        return None
    threadpool_limits(n)
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return [
        {
            k: i.get(k)
            for k in ("internal_api", "version", "architecture", "num_threads")
        }
        for i in blas
    ]


# --------------------------------------------------------------------------
# The network's matrix products and their FLOPs


def matmul_shapes(config, n):
    """Every matrix product of one iteration, as (kind, M, D_in, D_out).

    ``kind`` is ``"fwd"`` (x @ W), ``"wgrad"`` (x.T @ g) or ``"igrad"``
    (g @ W.T); M is the number of rows that go through the layer.
    """
    g_sizes = [config.z_dim, *config.g_hidden, config.data_dim]
    d_sizes = [config.data_dim, *config.d_hidden, 1]
    g_layers = list(zip(g_sizes[:-1], g_sizes[1:], strict=True))
    d_layers = list(zip(d_sizes[:-1], d_sizes[1:], strict=True))
    out = []
    # Discriminator step: G forward (N), D forward and backward on 2N rows,
    # no input gradient for D's first layer.
    out += [("fwd", n, a, b) for a, b in g_layers]
    out += [("fwd", 2 * n, a, b) for a, b in d_layers]
    out += [("wgrad", 2 * n, a, b) for a, b in d_layers]
    out += [("igrad", 2 * n, a, b) for a, b in d_layers[1:]]
    # Generator step: G and D forward (N), D input gradients only, G backward
    # without the input gradient of its first layer.
    out += [("fwd", n, a, b) for a, b in g_layers]
    out += [("fwd", n, a, b) for a, b in d_layers]
    out += [("igrad", n, a, b) for a, b in d_layers]
    out += [("wgrad", n, a, b) for a, b in g_layers]
    out += [("igrad", n, a, b) for a, b in g_layers[1:]]
    return out


def flops(shapes):
    return sum(2 * m * a * b for _, m, a, b in shapes)


class Floor:
    """The matrix products at their real shapes plus Adam's memory traffic."""

    def __init__(self, gan, n, rng):
        self.calls = []
        for kind, m, a, b in matmul_shapes(gan.config, n):
            x = rng.standard_normal((m, a), dtype=np.float32)
            w = rng.standard_normal((a, b), dtype=np.float32)
            g = rng.standard_normal((m, b), dtype=np.float32)
            if kind == "fwd":
                out = np.empty((m, b), np.float32)
                self.calls.append((np.matmul, x, w, out))
            elif kind == "wgrad":
                out = np.empty((a, b), np.float32)
                self.calls.append((np.matmul, x.T, g, out))
            elif b == 1:  # an outer product, (M, 1) * (D_in,)
                out = np.empty((m, a), np.float32)
                self.calls.append((np.multiply, g, w[:, 0], out))
            else:
                out = np.empty((m, a), np.float32)
                self.calls.append((np.matmul, g, w.T, out))
        # Per network: parameters, gradients and two moments, cut as Adam cuts,
        # the threads taking pieces in turn.
        self.nets = []
        threads = _parallel.get_num_threads()
        for net in (gan.D, gan.G):
            pieces = []
            for p in net.params.values():
                arrays = [np.ones(p.size, np.float32) for _ in range(4)]
                for start in range(0, p.size, PIECE):
                    pieces.append([a[start : start + PIECE] for a in arrays])
            self.nets.append((pieces, max(1, min(threads, len(pieces)))))
        self.adam_bytes = (
            7 * 4 * sum(p.size for net in (gan.G, gan.D) for p in net.params.values())
        )

    @staticmethod
    def _stream(pieces):
        # Reads p, g, m, v once and writes p, m, v once: the traffic of an
        # Adam step with the arithmetic left out.
        for p, g, m, v in pieces:
            np.add(m, g, out=m)
            np.add(v, g, out=v)
            np.add(p, m, out=p)

    def products(self):
        for fn, a, b, out in self.calls:
            fn(a, b, out=out)

    def traffic(self):
        for pieces, threads in self.nets:
            shared = iter(pieces)
            _parallel.run([lambda it=shared: self._stream(it)] * threads)

    def __call__(self):
        self.products()
        self.traffic()


# --------------------------------------------------------------------------
# Contenders


def make_npgan(config, images, seed):
    gan = GAN(config, rng=np.random.default_rng(seed))
    trainer = Trainer(gan, images, rng=np.random.default_rng(seed + 1))
    return trainer, trainer.train_step


def torch_networks(torch, gan):
    """PyTorch copies ``(G, D)`` of the GAN's two networks, same weights."""
    nn = torch.nn

    def build(seq):
        mods = []
        for layer in seq.layers:
            kind = type(layer).__name__
            if kind == "Dense":
                lin = nn.Linear(layer.in_features, layer.out_features)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
                    lin.bias.copy_(torch.from_numpy(layer.params["b"]))
                mods.append(lin)
            elif kind == "LeakyReLU":
                mods.append(nn.LeakyReLU(layer.slope))
            elif kind == "Tanh":
                mods.append(nn.Tanh())
            else:
                raise ValueError(f"no PyTorch counterpart for {kind}")
        return nn.Sequential(*mods)

    return build(gan.G), build(gan.D)


def make_torch(torch, gan, images, seed, fused):
    """The iteration function of a PyTorch copy of ``gan``."""
    nn = torch.nn
    c = gan.config
    G, D = torch_networks(torch, gan)
    kw = {"lr": c.lr_d, "betas": (c.beta1, c.beta2)}
    if fused:
        kw["fused"] = True
    opt_d = torch.optim.Adam(D.parameters(), **kw)
    opt_g = torch.optim.Adam(G.parameters(), **{**kw, "lr": c.lr_g})
    bce = nn.BCEWithLogitsLoss()
    data = torch.from_numpy(np.ascontiguousarray(images.reshape(len(images), -1)))
    n = c.batch_size
    ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
    both_targets = torch.cat([ones, zeros])
    gen = torch.Generator().manual_seed(seed)
    state = {"perm": torch.randperm(len(data), generator=gen), "pos": 0}
    d_params = list(D.parameters())

    def real_batch():
        if state["pos"] + n > len(data):
            state["perm"] = torch.randperm(len(data), generator=gen)
            state["pos"] = 0
        idx = state["perm"][state["pos"] : state["pos"] + n]
        state["pos"] += n
        return data[idx].float().div_(127.5).sub_(1.0)

    def grad_norm():
        norms = torch.stack([p.grad.norm() for p in G.parameters()])
        return torch.linalg.vector_norm(norms).item()

    def step_default():
        real = real_batch()
        # Discriminator
        opt_d.zero_grad()
        fake = G(torch.randn(n, c.z_dim, generator=gen))
        out_real, out_fake = D(real), D(fake.detach())
        d_loss = (bce(out_real, ones) + bce(out_fake, zeros)) / 2
        d_loss.backward()
        opt_d.step()
        # Generator
        opt_g.zero_grad()
        out = D(G(torch.randn(n, c.z_dim, generator=gen)))
        g_loss = bce(out, ones)
        g_loss.backward()
        norm = grad_norm()
        opt_g.step()
        return (
            d_loss.item(),
            g_loss.item(),
            torch.sigmoid(out_real).mean().item(),
            torch.sigmoid(out_fake).mean().item(),
            norm,
        )

    def step_fused():
        real = real_batch()
        opt_d.zero_grad()
        with torch.no_grad():
            fake = G(torch.randn(n, c.z_dim, generator=gen))
        logits = D(torch.cat([real, fake]))
        d_loss = bce(logits, both_targets)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        for p in d_params:
            p.requires_grad_(False)
        out = D(G(torch.randn(n, c.z_dim, generator=gen)))
        g_loss = bce(out, ones)
        g_loss.backward()
        for p in d_params:
            p.requires_grad_(True)
        norm = grad_norm()
        opt_g.step()
        with torch.no_grad():
            p = torch.sigmoid(logits[:, 0])
        return (
            d_loss.item(),
            g_loss.item(),
            p[:n].mean().item(),
            p[n:].mean().item(),
            norm,
        )

    return step_fused if fused else step_default


def torch_parts(torch, gan, floor):
    """PyTorch's matrix products at the floor's shapes, and its fused Adam.

    Returns two contenders: ``torch-products`` (the same products as the
    floor, ``torch.matmul`` into kept outputs) and ``torch-adam`` (one fused
    Adam step of each network, fixed gradients).
    """
    calls = []
    for fn, a, b, out in floor.calls:
        # Transposed operands stay transposed views, as in the floor.
        ta, tb, tout = (torch.from_numpy(v) for v in (a, b, out))
        if fn is np.multiply:
            calls.append((torch.mul, ta, tb, tout))
        else:
            calls.append((torch.matmul, ta, tb, tout))

    def products():
        for fn, a, b, out in calls:
            fn(a, b, out=out)

    G, D = torch_networks(torch, gan)
    c = gan.config
    opts = []
    for net in (D, G):
        for p in net.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        opts.append(
            torch.optim.Adam(
                net.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2), fused=True
            )
        )

    def adam():
        for opt in opts:
            opt.step()

    return {"torch-products": products, "torch-adam": adam}


# --------------------------------------------------------------------------
# Timing


def time_block(fn, k):
    start = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - start) / k


def summary(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def bench_batch(n, args, torch, base):
    config = GANConfig(**{**base, "batch_size": n})
    rng = np.random.default_rng(args.seed)
    m = 2000 if args.tiny else 10_000
    images = rng.integers(0, 256, size=(m, config.data_dim), dtype=np.uint8)
    trainer, npgan_step = make_npgan(config, images, args.seed)
    floor = Floor(trainer.gan, n, rng)
    contenders = {"npgan": npgan_step, "floor": floor}
    if args.breakdown:
        # Where the time goes: the floor's two parts apart, and npgan's two
        # Adam steps alone (on a copy of the GAN, with fixed gradients).
        spare = GAN(config, rng=np.random.default_rng(args.seed))
        for net in (spare.G, spare.D):
            for g in net.grads.values():
                g[...] = rng.standard_normal(g.shape) * 1e-3

        def adam():
            spare.opt_d.step(spare.D.grads)
            spare.opt_g.step(spare.G.grads)

        contenders["floor-products"] = floor.products
        contenders["floor-traffic"] = floor.traffic
        contenders["npgan-adam"] = adam
    if torch is not None:
        for name, fused in (("torch-default", False), ("torch-fused", True)):
            contenders[name] = make_torch(
                torch, trainer.gan, images, args.seed, fused=fused
            )
        if args.breakdown:
            contenders.update(torch_parts(torch, trainer.gan, floor))
    for fn in contenders.values():
        for _ in range(args.warmup):
            fn()
    estimate = time_block(npgan_step, 3)
    k = max(1, math.ceil(args.sample_time / estimate)) if args.sample_time > 0 else 1
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(time_block(contenders[name], k))
    shapes = matmul_shapes(config, n)
    result = {
        "batch": n,
        "iterations_per_sample": k,
        "flop_per_iteration": flops(shapes),
        "seconds": {name: summary(t) for name, t in times.items()},
        "floor_fraction": summary(
            [f / t for f, t in zip(times["floor"], times["npgan"], strict=True)]
        ),
    }
    if torch is not None:
        best = [
            min(a, b)
            for a, b in zip(times["torch-default"], times["torch-fused"], strict=True)
        ]
        result["ratio_vs_best_torch"] = summary(
            [b / t for b, t in zip(best, times["npgan"], strict=True)]
        )
    return result


def square_gemm_rate(size, repeats=5):
    """GFLOP/s of a float32 square matrix product of the given size."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(time_block(lambda: np.matmul(a, b, out=out), 1) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


# --------------------------------------------------------------------------
# Report


def fmt_rate(seconds, scale=1.0):
    s = seconds
    return f"{scale / s['median']:.1f} [{scale / s['max']:.1f}-{scale / s['min']:.1f}]"


def table(results, peak):
    has_torch = "ratio_vs_best_torch" in results[0]
    head = [
        "batch",
        "npgan it/s med [min-max]",
        "samples/s",
        "GFLOP/s",
        "floor it/s",
        "% of floor",
    ]
    if has_torch:
        head += ["torch default it/s", "torch fused it/s", "npgan / best torch"]
    head += ["square-GEMM peak bound it/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s, n = r["seconds"], r["batch"]
        t = s["npgan"]["median"]
        f = r["floor_fraction"]
        row = [
            str(n),
            fmt_rate(s["npgan"]),
            f"{n / t:.0f}",
            f"{r['flop_per_iteration'] / t / 1e9:.1f}",
            f"{1 / s['floor']['median']:.1f}",
            f"{100 * f['median']:.0f}% [{100 * f['min']:.0f}-{100 * f['max']:.0f}]",
        ]
        if has_torch:
            q = r["ratio_vs_best_torch"]
            row += [
                fmt_rate(s["torch-default"]),
                fmt_rate(s["torch-fused"]),
                f"{q['median']:.2f} [{q['min']:.2f}-{q['max']:.2f}]",
            ]
        row.append(f"{peak * 1e9 / r['flop_per_iteration']:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def breakdown_table(results):
    has_torch = "torch-adam" in results[0]["seconds"]
    head = [
        "batch",
        "npgan ms",
        "matrix products ms",
        "npgan Adam ms",
        "rest ms",
        "Adam traffic floor ms",
    ]
    if has_torch:
        head += ["torch fused ms", "torch products ms", "torch fused Adam ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = {name: 1e3 * v["median"] for name, v in r["seconds"].items()}
        rest = s["npgan"] - s["floor-products"] - s["npgan-adam"]
        row = [
            str(r["batch"]),
            f"{s['npgan']:.1f}",
            f"{s['floor-products']:.1f}",
            f"{s['npgan-adam']:.1f}",
            f"{rest:.1f}",
            f"{s['floor-traffic']:.1f}",
        ]
        if has_torch:
            row += [
                f"{s['torch-fused']:.1f}",
                f"{s['torch-products']:.1f}",
                f"{s['torch-adam']:.1f}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def machine_info(blas, threads, torch):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "threads": threads,
        "torch": None if torch is None else torch.__version__,
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
    }
    return info


def main(argv=None):
    args = parse_args(argv)
    blas = limit_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: timing npgan and the floor only.")
        else:
            torch.set_num_threads(args.threads)
            torch.manual_seed(args.seed)
    base = TINY if args.tiny else {}
    info = machine_info(blas, args.threads, torch)
    print(
        f"{info['cpu']}, {info['cpus']} CPUs; Python {info['python']}, "
        f"numpy {info['numpy']}, torch {info['torch']}; {args.threads} threads; "
        f"load average {info['load_average_start']}"
    )
    if blas:
        print("BLAS: " + "; ".join(str(b) for b in blas))
    print(f"OPENBLAS_THREAD_TIMEOUT={info['OPENBLAS_THREAD_TIMEOUT']}")
    if info["OPENBLAS_CORETYPE"]:
        print(f"note: OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} is set")
    peak = square_gemm_rate(256 if args.tiny else 2048)
    print(f"square float32 GEMM: {peak:.0f} GFLOP/s")
    results = []
    for n in args.batches:
        results.append(bench_batch(n, args, torch, base))
        r = results[-1]
        print(
            f"  batch {n}: npgan {1 / r['seconds']['npgan']['median']:.1f} it/s, "
            f"{r['iterations_per_sample']} iterations per sample",
            flush=True,
        )
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print()
    print(table(results, peak))
    if args.breakdown:
        print()
        print(breakdown_table(results))
    print()
    print(
        f"{args.rounds} rounds per batch size; rates are medians [min-max] over "
        "rounds; ratios and floor fractions are taken within each round. "
        f"Load average at the end: {info['load_average_end']}."
    )
    report = {"machine": info, "square_gemm_gflops": peak, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
