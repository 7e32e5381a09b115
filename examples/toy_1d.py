"""The four panels of Figure 1 of Goodfellow et al. (2014), with a trained
npgan generator and discriminator in 1D.

p_data is N(2, 0.5^2); G maps z ~ N(0, 1) through an MLP 1-8-1 and D is an
MLP 1-32-32-1, both trained with Adam by the explicit steps of
``npgan.theory.ToyGAN``. The panels show p_data, p_g (a Gaussian kernel
density estimate of G's samples) and D(x):

(a) at the start, after a few discriminator steps: D is a partial classifier;
(b) after D learns with G fixed: D approaches D* = p_data / (p_data + p_g);
(c) after G moves with D fixed: G's mass flows to where D says "data";
(d) after alternating training: p_g is close to p_data and D is close to 1/2.

For each panel it prints JSD(p_data, p_g), V(D, G), V(D*, G) = -log 4 + 2 JSD
and the mean |D - 1/2| under p_data, all by the quadrature of npgan.theory
with p_g the kernel density estimate. Writes ``toy_1d.png`` into ``--out``.

    python examples/toy_1d.py --seed 0
"""

import argparse
import math
import os
import time
from pathlib import Path

# tiny matrices: BLAS threads only add overhead (no effect if numpy is loaded)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from npgan import theory  # noqa: E402

P_DATA = theory.Gaussian(2.0, 0.5)
BATCH = 128
START_MEAN, START_STD = 0.8, 0.6  # where p_g starts, as in the paper's (a)
G_HIDDEN = (8,)  # one hidden layer: (16, 16) collapsed to spikes in phase (c)
K_D = 2  # discriminator steps per generator step in phase (d)
X_PLOT = np.linspace(-1.0, 5.0, 600)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/toy_1d"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=3000, help="steps of phase (d)")
    p.add_argument("--d-steps", type=int, default=600, help="D steps of phase (b)")
    p.add_argument("--g-steps", type=int, default=60, help="G steps of phase (c)")
    p.add_argument("--kde-samples", type=int, default=1000)
    return p.parse_args(argv)


def kde(samples):
    """Gaussian kernel density estimate (Scott's bandwidth) as a mixture."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    h = 1.06 * x.std() * x.size ** (-1 / 5)
    return theory.GaussianMixture(x, np.full(x.size, max(h, 1e-3)))


def snapshot(gan, n_kde):
    p_g = kde(gan.generate(n_kde))

    def d_logit(x):
        return gan.d_logit(x[:, None]).astype(np.float64)

    x = np.linspace(-1.0, 5.0, 2001)
    w = P_DATA.pdf(x)
    d = theory.sigmoid(d_logit(x))
    stats = {
        "jsd": theory.jsd(P_DATA, p_g, atol=1e-7),
        "V": theory.value_function(d_logit, P_DATA, p_g, atol=1e-7),
        "V_opt": theory.optimal_value(P_DATA, p_g, atol=1e-7),
        "mean_abs_d_minus_half": float(np.sum(w * np.abs(d - 0.5)) / np.sum(w)),
        "mean_abs_d_minus_dstar": float(
            np.sum(w * np.abs(d - theory.optimal_discriminator(P_DATA, p_g, x)))
            / np.sum(w)
        ),
    }
    z = np.linspace(-2.0, 2.0, 15, dtype=np.float32)[:, None]
    return {
        "p_g": p_g,
        "d_plot": theory.sigmoid(d_logit(X_PLOT)),
        "z": z[:, 0],
        "gz": gan.G.forward(z)[:, 0],
        **stats,
    }


def draw(ax, snap, title):
    x = X_PLOT
    p_g = snap["p_g"].pdf(x)
    ax.plot(x, P_DATA.pdf(x), "k:", lw=2, label=r"$p_{data}$")
    ax.plot(x, p_g, "g-", lw=1.5, label=r"$p_g$ (KDE)")
    ax.plot(x, snap["d_plot"], "b--", lw=1.5, label="D(x)")
    d_star = theory.optimal_discriminator(P_DATA, snap["p_g"], x)
    d_star[0.5 * (P_DATA.pdf(x) + p_g) < 0.01] = np.nan  # only where there is mass
    ax.plot(
        x,
        d_star,
        color="tab:blue",
        lw=0.8,
        alpha=0.4,
        label="D*(x) where (p_data+p_g)/2 > 0.01",
    )
    # the mapping x = G(z), drawn as in the paper: z line below, x line above
    z_line, x_line = -0.45, -0.1
    ax.axhline(z_line, color="0.5", lw=0.8)
    ax.axhline(x_line, color="0.5", lw=0.8)
    z_pos = 2.0 + snap["z"]  # place z in [0, 4] under the x axis
    for zp, gz in zip(z_pos, snap["gz"], strict=True):
        ax.annotate(
            "",
            xy=(gz, x_line),
            xytext=(zp, z_line),
            arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.6},
        )
    ax.text(-0.95, z_line + 0.03, "z", fontsize=9)
    ax.text(-0.95, x_line + 0.03, "x", fontsize=9)
    ax.set_xlim(-1.0, 5.0)
    ax.set_ylim(-0.55, 1.05)
    ax.set_title(
        f"{title}\nJSD={snap['jsd']:.3f}  V(D,G)={snap['V']:.3f}  "
        f"mean|D-1/2|={snap['mean_abs_d_minus_half']:.3f}",
        fontsize=9,
    )


def place_generator(gan, *, mean, std):
    """Rescale G's output layer so G(z) has roughly this mean and spread.

    The paper's Figure 1 starts from a pair "near convergence": p_g close to
    p_data but shifted. A freshly initialised G puts its mass anywhere.
    """
    out = gan.G.forward(gan.noise(4096))[:, 0]
    last = len(gan.G.layers) - 1
    W, b = gan.G.params[f"{last}.W"], gan.G.params[f"{last}.b"]
    scale = np.float32(std / max(float(out.std()), 1e-6))
    W *= scale
    b[...] = (b - out.mean()) * scale + np.float32(mean)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    gan = theory.ToyGAN(
        data_dim=1,
        noise_dim=1,
        rng=rng,
        g_hidden=G_HIDDEN,
        d_hidden=(32, 32),
        lr_g=1e-3,
        lr_d=1e-3,
    )

    place_generator(gan, mean=START_MEAN, std=START_STD)

    def real():
        return P_DATA.sample(BATCH, rng=rng, dtype=np.float32)[:, None]

    t0 = time.perf_counter()
    snaps = {}
    for _ in range(max(1, args.d_steps // 30)):  # (a) a partial classifier
        gan.d_step(real())
    snaps["a"] = snapshot(gan, args.kde_samples)
    for _ in range(args.d_steps):  # (b) D learns, G fixed
        gan.d_step(real())
    snaps["b"] = snapshot(gan, args.kde_samples)
    for _ in range(args.g_steps):  # (c) G moves, D fixed
        gan.g_step(BATCH)
    snaps["c"] = snapshot(gan, args.kde_samples)
    gan.opt_g.lr = gan.opt_d.lr = 5e-4
    for step in range(args.steps):  # (d) alternate until D ~ 1/2
        if step == (3 * args.steps) // 4:
            gan.opt_g.lr = gan.opt_d.lr = 1e-4
        for _ in range(K_D):
            gan.d_step(real())
        gan.g_step(BATCH)
    snaps["d"] = snapshot(gan, args.kde_samples)
    seconds = time.perf_counter() - t0

    titles = {
        "a": "(a) start: D is a partial classifier",
        "b": f"(b) after {args.d_steps} D steps: D near D*",
        "c": f"(c) after {args.g_steps} G steps: G follows D",
        "d": f"(d) after {args.steps} alternating steps",
    }
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.4), sharey=True)
    for ax, key in zip(axes, "abcd", strict=True):
        draw(ax, snaps[key], titles[key])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    png = args.out / "toy_1d.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)

    print(
        f"p_data = N(2, 0.5^2); -log 4 = {-math.log(4):.4f}; trained in {seconds:.1f} s"
    )
    print("panel  JSD(p_data,p_g)  V(D,G)    V(D*,G)   mean|D-1/2|  mean|D-D*|")
    for key in "abcd":
        s = snaps[key]
        print(
            f"({key})    {s['jsd']:.4f}           {s['V']:+.4f}   {s['V_opt']:+.4f}"
            f"   {s['mean_abs_d_minus_half']:.4f}"
            f"       {s['mean_abs_d_minus_dstar']:.4f}"
        )
    print(f"wrote {os.fspath(png)}")
    result = {
        key: {k: v for k, v in s.items() if isinstance(v, float)}
        for key, s in snaps.items()
    }
    result["png"] = png
    result["seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
