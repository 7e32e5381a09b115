"""Pictures of a training run: sample grids and training curves.

Everything here draws off screen with matplotlib's Agg canvas and never
touches pyplot's global figure state, so it works without a display and can be
called from any thread of a program that also uses pyplot.

Contents
--------
- :func:`image_grid`: tile ``N`` square images into one uint8 array.
- :func:`save_grid`: write generator output in ``[-1, 1]`` as a PNG grid.
- :func:`save_curves`: both losses, and ``D(x)`` / ``D(G(z))`` with the 0.5
  equilibrium line, from a :class:`~npgan.train.Trainer` history.
"""

import math
import os

import numpy as np

from npgan.data import to_uint8

__all__ = ["image_grid", "moving_average", "save_curves", "save_grid"]


def image_grid(images, *, ncol=None, pad=2, background=0):
    """Tile images into one picture, row by row.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W) or (N, P) with P a perfect square
        The images; flat rows are reshaped to ``H = W = sqrt(P)``.
    ncol : int or None
        Images per row; default ``ceil(sqrt(N))``.
    pad : int
        Pixels of ``background`` between and around the images.
    background : int
        Grey level (0-255) of the padding and of unused cells.

    Returns
    -------
    ndarray of uint8, shape (R * (H + pad) + pad, C * (W + pad) + pad)
        ``R`` rows and ``C = ncol`` columns.

    Raises
    ------
    TypeError
        If ``images`` is not uint8.
    ValueError
        If there are no images, or flat rows are not perfect squares.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"image_grid: expected uint8 images, got {images.dtype}")
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(
                f"image_grid: flat images need a square pixel count, got "
                f"{images.shape[1]}"
            )
        images = images.reshape(len(images), side, side)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(
            f"image_grid: expected shape (N, H, W) with N >= 1, got {images.shape}"
        )
    n, h, w = images.shape
    ncol = math.ceil(math.sqrt(n)) if ncol is None else int(ncol)
    if ncol < 1:
        raise ValueError(f"image_grid: ncol must be >= 1, got {ncol}")
    nrow = math.ceil(n / ncol)
    grid = np.full(
        (nrow * (h + pad) + pad, ncol * (w + pad) + pad), background, dtype=np.uint8
    )
    for i, image in enumerate(images):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_grid(path, samples, *, ncol=None, scale=2):
    """Write samples in ``[-1, 1]`` as a grey-scale PNG grid.

    Parameters
    ----------
    path : str or os.PathLike
        Destination PNG.
    samples : ndarray of float, shape (N, X) or (N, H, W)
        Generator output; -1 is black, 1 is white (values are clipped).
    ncol : int or None
        Images per row, see :func:`image_grid`.
    scale : int
        Each pixel becomes a ``scale x scale`` block, so small digits stay
        legible in a viewer that does not zoom.
    """
    grid = image_grid(to_uint8(samples), ncol=ncol)
    if scale > 1:
        grid = np.kron(grid, np.ones((scale, scale), dtype=np.uint8))
    from matplotlib.image import imsave

    imsave(os.fspath(path), grid, cmap="gray", vmin=0, vmax=255, format="png")


def moving_average(values, window):
    """Trailing mean over ``window`` values (shorter at the start).

    Parameters
    ----------
    values : array_like of float, shape (T,)
    window : int
        Number of values averaged, >= 1.

    Returns
    -------
    ndarray of float64, shape (T,)
        Entry ``t`` is the mean of ``values[max(0, t - window + 1) : t + 1]``.
    """
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"moving_average: window must be >= 1, got {window}")
    csum = np.concatenate([[0.0], np.cumsum(values)])
    t = np.arange(1, len(values) + 1)
    start = np.maximum(0, t - window)
    return (csum[t] - csum[start]) / (t - start)


def save_curves(path, history, *, window=None, title=None):
    """Plot a training history into a PNG of two panels.

    The top panel shows the discriminator's and the generator's losses; the
    bottom one shows the mean ``D(x)`` on real batches and ``D(G(z))`` on fake
    ones, with a dashed line at 0.5, where an optimal discriminator sits once
    the generator matches the data. Faint lines are the per-step values, solid
    lines their moving average.

    Parameters
    ----------
    path : str or os.PathLike
        Destination PNG.
    history : mapping of str -> sequence
        Needs ``step``, ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake``, all
        of one length T >= 1 (see :data:`npgan.train.HISTORY_KEYS`).
    window : int or None
        Moving-average width; default ``max(1, T // 50)``.
    title : str or None
        Figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    needed = ("step", "d_loss", "g_loss", "d_real", "d_fake")
    missing = [key for key in needed if key not in history]
    if missing:
        raise ValueError(f"save_curves: history lacks {missing}")
    steps = np.asarray(history["step"])
    if len(steps) == 0:
        raise ValueError("save_curves: history is empty; expected at least one step")
    window = max(1, len(steps) // 50) if window is None else int(window)

    fig = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    panels = (
        (top, (("d_loss", "discriminator loss"), ("g_loss", "generator loss"))),
        (bottom, (("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake"))),
    )
    for ax, series in panels:
        for i, (key, label) in enumerate(series):
            colour = f"C{i}"
            values = np.asarray(history[key], dtype=np.float64)
            ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.6)
            ax.plot(steps, moving_average(values, window), color=colour, label=label)
        if ax is bottom:
            ax.axhline(0.5, color="black", linestyle="--", linewidth=1, label="0.5")
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    top.set_ylabel("loss")
    bottom.set_ylim(0.0, 1.0)
    bottom.set_ylabel("mean probability")
    bottom.set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.savefig(os.fspath(path), format="png")
