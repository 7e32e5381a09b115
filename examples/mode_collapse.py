"""Mode coverage on a ring of 8 Gaussians in 2D: minimax loss, non-saturating
loss, and PacGAN (packing, Lin et al. 2018) as a remedy. Claim 4 of
docs/theory.md.

p_data puts equal mass on 8 Gaussians of standard deviation 0.05 at radius 2.
Each method trains G (MLP 2-32-32-2 on z ~ N(0, I_2)) and D (MLP 32-32, input
2 or 2 * pack) with Adam (lr 1e-3, betas (0.5, 0.999)), one D step and one
G step per iteration, 128 packs per step. PacGAN's D sees ``pack`` = 2
samples of the same kind concatenated, so it can notice a lack of diversity
within a pack; its G step is otherwise the non-saturating one.

Every ``--every`` steps it draws 2000 samples from G and counts:
- a sample is *near a mode* when it lies within 3 standard deviations (0.15)
  of a mode centre; the *share near a mode* is the fraction of such samples;
- a mode is *covered* when at least 1% of the 2000 samples are near it.
It also records the mean D(G(z)) of the step. Writes ``mode_collapse.png`` into
``--out`` and prints the numbers.

    python examples/mode_collapse.py --steps 3000 --seed 0
"""

import argparse
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

N_MODES, RADIUS, STD = 8, 2.0, 0.05
ANGLES = 2 * np.pi * np.arange(N_MODES) / N_MODES
CENTERS = np.stack([RADIUS * np.cos(ANGLES), RADIUS * np.sin(ANGLES)], axis=1)
NEAR = 3 * STD
COVERED_SHARE = 0.01
N_EVAL = 2000
PACKS = 128
METHODS = (
    ("minimax", "minimax", 1),
    ("non-saturating", "non-saturating", 1),
    ("PacGAN (pack=2)", "non-saturating", 2),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/mode_collapse"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=100, help="measure every N steps")
    return p.parse_args(argv)


def sample_ring(n, rng):
    """``n`` samples of p_data, float32 of shape (n, 2)."""
    k = rng.integers(0, N_MODES, size=n)
    x = CENTERS[k] + STD * rng.standard_normal((n, 2))
    return x.astype(np.float32)


def coverage(x):
    """(modes covered, share of samples near a mode) for samples (N, 2)."""
    dist = np.linalg.norm(x[:, None, :] - CENTERS[None, :, :], axis=2)
    near = dist.min(axis=1) <= NEAR
    counts = np.bincount(dist.argmin(axis=1)[near], minlength=N_MODES)
    return int(np.sum(counts >= COVERED_SHARE * x.shape[0])), float(near.mean())


def train(kind, pack, *, steps, every, seed):
    rng = np.random.default_rng(seed)
    gan = theory.ToyGAN(
        data_dim=2,
        noise_dim=2,
        rng=rng,
        g_hidden=(32, 32),
        d_hidden=(32, 32),
        lr_g=1e-3,
        lr_d=1e-3,
        pack=pack,
    )
    n = PACKS * pack
    log = {"step": [], "modes": [], "share": [], "d_fake": [], "snapshots": {}}
    snap_at = {max(1, steps // 8), steps // 3, (2 * steps) // 3, steps}
    for step in range(1, steps + 1):
        gan.d_step(sample_ring(n, rng))
        _, d_fake, _ = gan.g_step(n, kind)
        if step % every == 0 or step in snap_at:
            x = gan.generate(N_EVAL)
            modes, share = coverage(x)
            log["step"].append(step)
            log["modes"].append(modes)
            log["share"].append(share)
            log["d_fake"].append(d_fake)
            if step in snap_at:
                log["snapshots"][step] = x[:500]
    return log


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logs, seconds = {}, {}
    for name, kind, pack in METHODS:
        t0 = time.perf_counter()
        logs[name] = train(
            kind, pack, steps=args.steps, every=args.every, seed=args.seed
        )
        seconds[name] = time.perf_counter() - t0

    snap_steps = sorted(next(iter(logs.values()))["snapshots"])
    fig = plt.figure(figsize=(3.0 * len(snap_steps), 3.0 * len(METHODS) + 3.4))
    grid = fig.add_gridspec(len(METHODS) + 1, len(snap_steps))
    for row, (name, _, _) in enumerate(METHODS):
        for col, step in enumerate(snap_steps):
            ax = fig.add_subplot(grid[row, col])
            x = logs[name]["snapshots"][step]
            ax.scatter(*CENTERS.T, s=60, facecolors="none", edgecolors="k", lw=0.8)
            ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:green")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            i = logs[name]["step"].index(step)
            ax.set_title(
                f"{name}, step {step}\n{logs[name]['modes'][i]}/8 modes, "
                f"{100 * logs[name]['share'][i]:.0f}% near a mode",
                fontsize=8,
            )
    half = max(1, len(snap_steps) // 2)
    ax_m = fig.add_subplot(grid[len(METHODS), :half])
    ax_s = fig.add_subplot(grid[len(METHODS), half:])
    for name, _, _ in METHODS:
        log = logs[name]
        ax_m.plot(log["step"], log["modes"], label=name)
        ax_s.plot(log["step"], log["share"], label=name)
    ax_m.set_ylabel("modes covered (of 8)")
    ax_m.set_ylim(-0.3, 8.3)
    ax_s.set_ylabel("share of samples near a mode")
    ax_s.set_ylim(0, 1)
    for ax in (ax_m, ax_s):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = args.out / "mode_collapse.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)

    print(
        f"ring of {N_MODES} Gaussians, radius {RADIUS}, std {STD}; near = within "
        f"{NEAR:.2f}; covered = at least {COVERED_SHARE:.0%} of {N_EVAL} samples"
    )
    for name, _, _ in METHODS:
        log = logs[name]
        print(f"\n{name} ({seconds[name]:.1f} s)")
        print("  step  modes  near   D(G(z))")
        stride = max(1, len(log["step"]) // 10)
        rows = sorted(set(range(0, len(log["step"]), stride)) | {len(log["step"]) - 1})
        for i in rows:
            print(
                f"  {log['step'][i]:5d}  {log['modes'][i]:3d}    "
                f"{log['share'][i]:.2f}   {log['d_fake'][i]:.2f}"
            )
        partial = [
            i
            for i, m in enumerate(log["modes"])
            if m < N_MODES and log["d_fake"][i] >= 0.3
        ]
        print(
            f"  measurements with fewer than {N_MODES} modes covered while "
            f"mean D(G(z)) >= 0.3: {len(partial)} of {len(log['step'])}"
        )
        last = len(log["step"]) // 2
        print(
            f"  mean over the second half: {np.mean(log['modes'][last:]):.2f} modes, "
            f"{np.mean(log['share'][last:]):.2f} near a mode"
        )
    print(f"wrote {os.fspath(png)}")
    result = {
        name: {k: v for k, v in log.items() if k != "snapshots"}
        for name, log in logs.items()
    }
    result["png"] = png
    result["seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
