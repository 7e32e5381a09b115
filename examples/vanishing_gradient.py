"""Why the minimax generator loss saturates: the two generator losses and
their gradients against D(G(z)), and the generator's gradient norms at the
start of a real MNIST run under each loss. Claim 3 of docs/theory.md.

Top row: log(1 - D) (minimax) and -log D (non-saturating) as functions of
D = D(G(z)), and the size of their derivatives with respect to the
discriminator's logit, D and 1 - D; their ratio is D / (1 - D).

Bottom row: an MLP GAN on the MNIST test split (G 100-256-784 with tanh,
D 784-256-1 with LeakyReLU(0.2); D trained by Adam lr 2e-4, betas (0.5, 0.999),
G by plain SGD lr 0.01 (``--optimizer adam`` for Adam lr 2e-4); batch 64;
first ``--d-warmup`` D-only steps, as when D wins early in training, then
one D step and one G step per step). The run is repeated from the same initial
weights and seed with each loss. At every step, before the G update, both
generator gradients are computed on the same fakes, and their Euclidean norms
over all of G's parameters are recorded with the mean D(G(z)).

Writes ``vanishing_gradient.png`` into ``--out``.

    python examples/vanishing_gradient.py --data ../shared/data/mnist
"""

import argparse
import math
import os
import time
from pathlib import Path

# small matrices: BLAS threads only add overhead (no effect if numpy is loaded)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from npgan import data, layers, losses, optim, theory  # noqa: E402

KINDS = ("minimax", "non-saturating")
NOISE_DIM = 100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/vanishing_gradient"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300, help="generator steps per run")
    p.add_argument(
        "--d-warmup",
        type=int,
        default=200,
        help="discriminator-only steps before the generator starts",
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        default="sgd",
        help="generator optimizer (Adam rescales steps, so it hides saturation "
        "after a few steps; plain SGD moves by the raw gradient)",
    )
    p.add_argument("--sgd-lr", type=float, default=0.01)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=None,
        help="directory with the MNIST t10k IDX files (default: npgan's search)",
    )
    return p.parse_args(argv)


def grad_norm(net):
    return math.sqrt(sum(float(np.sum(g * g)) for g in net.grads.values()))


def run(kind, images, *, steps, d_warmup, batch, hidden, seed, optimizer, sgd_lr):
    """Train with ``kind``; return per-step D(G(z)) and both G gradient norms."""
    rng = np.random.default_rng(seed)
    G = layers.mlp([NOISE_DIM, hidden, 784], rng=rng, output_activation=layers.Tanh)
    D = layers.mlp([784, hidden, 1], rng=rng)
    if optimizer == "adam":
        opt_g = optim.Adam(G.params, lr=2e-4, betas=(0.5, 0.999))
    else:
        opt_g = optim.SGD(G.params, lr=sgd_lr)
    opt_d = optim.Adam(D.params, lr=2e-4, betas=(0.5, 0.999))
    log = {"d_fake": [], "minimax": [], "non-saturating": []}
    targets = np.concatenate([np.ones(batch), np.zeros(batch)]).astype(np.float32)

    def d_step():  # real (label 1) against fakes (label 0)
        real = images[rng.integers(0, images.shape[0], size=batch)]
        fake = G.forward(rng.standard_normal((batch, NOISE_DIM), dtype=np.float32))
        _, g = losses.bce_with_logits(D.forward(np.concatenate([real, fake])), targets)
        D.backward(g, param_grads=True)
        opt_d.step(D.grads)

    for _ in range(d_warmup):
        d_step()
    for _ in range(steps):
        d_step()
        # generator: both losses' gradients on the same fakes, then a step
        z = rng.standard_normal((batch, NOISE_DIM), dtype=np.float32)
        fake = G.forward(z)
        logits = D.forward(fake)
        log["d_fake"].append(float(np.mean(theory.sigmoid(logits))))
        step_grads = None
        for k in KINDS:
            _, g = losses.generator_loss(logits, k)
            G.backward(D.backward(g, param_grads=False), param_grads=True)
            log[k].append(grad_norm(G))
            if k == kind:
                step_grads = {name: a.copy() for name, a in G.grads.items()}
        opt_g.step(step_grads)
    return log


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds = data.load_dataset("mnist", split="test", data_dir=args.data_dir)
    images = data.to_unit(ds.images)
    logs = {
        kind: run(
            kind,
            images,
            steps=args.steps,
            d_warmup=args.d_warmup,
            optimizer=args.optimizer,
            sgd_lr=args.sgd_lr,
            batch=args.batch,
            hidden=args.hidden,
            seed=args.seed,
        )
        for kind in KINDS
    }
    seconds = time.perf_counter() - t0

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    d = np.logspace(-5, np.log10(1 - 1e-5), 400)
    logit = np.log(d) - np.log1p(-d)
    ax = axes[0, 0]
    for kind, style in zip(KINDS, ("tab:red", "tab:blue"), strict=True):
        ax.plot(d, theory.generator_loss_per_sample(logit, kind), color=style)
    ax.set_xscale("log")
    ax.set_xlabel("D(G(z))")
    ax.set_ylabel("generator loss (minimised by G)")
    ax.legend(["minimax: log(1 - D)", "non-saturating: -log D"], fontsize=8)
    ax.set_title("The two generator losses")
    ax = axes[0, 1]
    for kind, style in zip(KINDS, ("tab:red", "tab:blue"), strict=True):
        ax.plot(d, np.abs(theory.generator_loss_grad(logit, kind)), color=style)
    ax.plot(d, theory.saturation_ratio(logit), "k:", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1e2)
    ax.set_xlabel("D(G(z))")
    ax.set_ylabel("|d loss / d logit|")
    ax.legend(["minimax: D", "non-saturating: 1 - D", "ratio D / (1 - D)"], fontsize=8)
    ax.set_title("Gradient w.r.t. the discriminator's logit")

    steps = np.arange(1, args.steps + 1)
    ax = axes[1, 0]
    for kind, style in zip(KINDS, ("tab:red", "tab:blue"), strict=True):
        ax.plot(steps, logs[kind]["d_fake"], color=style, label=f"trained with {kind}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean D(G(z))")
    ax.set_title(f"MNIST, D head start of {args.d_warmup} steps, G: {args.optimizer}")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    for kind, style in zip(KINDS, ("tab:red", "tab:blue"), strict=True):
        log = logs[kind]
        ax.plot(steps, log["minimax"], color=style, lw=1, label=f"{kind} run: minimax")
        ax.plot(
            steps,
            log["non-saturating"],
            color=style,
            lw=1,
            ls="--",
            label=f"{kind} run: non-saturating",
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("||grad of G's parameters||")
    ax.set_title("Generator gradient norm under each loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = args.out / "vanishing_gradient.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)

    print(f"MNIST test split from {ds.source}: {images.shape[0]} images")
    print(
        f"{args.d_warmup} D-only steps, then {args.steps} G steps per run, "
        f"batch {args.batch}, generator optimizer {args.optimizer}, "
        f"{seconds:.1f} s in all"
    )
    for kind in KINDS:
        log = logs[kind]
        print(f"\nrun trained with the {kind} loss")
        print("  step  mean D(G(z))  ||g minimax||  ||g non-sat||  ratio")
        marks = sorted({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, args.steps})
        for s in [m for m in marks if m <= args.steps]:
            mm, ns = log["minimax"][s - 1], log["non-saturating"][s - 1]
            print(
                f"  {s:4d}  {log['d_fake'][s - 1]:.2e}      {mm:.3e}      "
                f"{ns:.3e}      {mm / ns:.2e}"
            )
    print(f"wrote {os.fspath(png)}")
    return {"logs": logs, "png": png, "seconds": seconds, "source": ds.source}


if __name__ == "__main__":
    main()
