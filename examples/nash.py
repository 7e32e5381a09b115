"""Gradient play on min_x max_y x*y: simultaneous steps spiral out, alternating
steps circle the equilibrium (0, 0). Claim 5 of docs/theory.md.

Writes ``nash.png`` into ``--out`` (default ``out/nash/``) and prints the
distance to (0, 0) at the start and the end of each run next to the value the
analysis predicts.

    python examples/nash.py --lr 0.1 --steps 200
"""

import argparse
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from npgan import theory  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/nash"))
    p.add_argument("--seed", type=int, default=0, help="unused: nothing is random")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--x0", type=float, default=1.0)
    p.add_argument("--y0", type=float, default=1.0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lr, steps = args.lr, args.steps
    runs = {
        mode: theory.bilinear_game(args.x0, args.y0, lr=lr, steps=steps, mode=mode)
        for mode in ("simultaneous", "alternating")
    }
    r0 = math.hypot(args.x0, args.y0)
    t = np.arange(steps + 1)
    results = {"r0": r0}

    fig, (ax_xy, ax_r) = plt.subplots(1, 2, figsize=(11, 5.4))
    colors = {"simultaneous": "tab:red", "alternating": "tab:blue"}
    for mode, (xs, ys) in runs.items():
        r = np.hypot(xs, ys)
        ax_xy.plot(xs, ys, ".-", ms=2, lw=0.7, color=colors[mode], label=mode)
        ax_r.plot(t, r, color=colors[mode], label=mode)
        results[mode] = {"final": float(r[-1]), "min": float(r.min())}
        results[mode]["max"] = float(r.max())
    predicted = r0 * (1 + lr * lr) ** (t / 2)
    ax_r.plot(t, predicted, "k:", label=r"$r_0 (1+\eta^2)^{t/2}$")
    q0 = float(theory.bilinear_invariant(args.x0, args.y0, lr))
    lo, hi = math.sqrt(q0 / (1 + lr / 2)), math.sqrt(q0 / (1 - lr / 2))
    ax_r.axhspan(lo, hi, color="tab:blue", alpha=0.15, label="alternating: bound")
    q = theory.bilinear_invariant(*runs["alternating"], lr)
    results["simultaneous"]["predicted_final"] = float(predicted[-1])
    results["alternating"]["bounds"] = (lo, hi)
    results["alternating"]["invariant_drift"] = float(np.max(np.abs(q - q0)))

    ax_xy.plot([0], [0], "k*", ms=12, label="equilibrium (0, 0)")
    ax_xy.plot([args.x0], [args.y0], "ko", ms=5, label="start")
    ax_xy.set_aspect("equal")
    ax_xy.set_xlabel("x (minimises x·y)")
    ax_xy.set_ylabel("y (maximises x·y)")
    ax_xy.set_title(f"Gradient play on x·y, lr={lr}, {steps} steps")
    ax_xy.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax_r.set_yscale("log")
    ax_r.set_xlabel("step")
    ax_r.set_ylabel("distance to (0, 0)")
    ax_r.set_title("Distance to the Nash equilibrium")
    ax_r.legend(fontsize=8)
    fig.tight_layout()
    png = args.out / "nash.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    results["png"] = png

    s, a = results["simultaneous"], results["alternating"]
    print(f"start ({args.x0}, {args.y0}), distance {r0:.6f}, lr {lr}, {steps} steps")
    print(
        f"simultaneous: final distance {s['final']:.6f} "
        f"(predicted r0*(1+lr^2)^(steps/2) = {s['predicted_final']:.6f})"
    )
    print(
        f"alternating:  distance stays in [{a['min']:.6f}, {a['max']:.6f}] "
        f"(bounds [{lo:.6f}, {hi:.6f}]), final {a['final']:.6f}, "
        f"invariant x^2+y^2-lr*x*y drifts by {a['invariant_drift']:.2e}"
    )
    print(f"wrote {os.fspath(png)}")
    return results


if __name__ == "__main__":
    main()
