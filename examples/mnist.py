"""Train a GAN on MNIST digits and write samples, curves, history and networks.

    python examples/mnist.py                      # best source available
    python examples/mnist.py --data ../shared/data/mnist --split test
    python examples/mnist.py --resume runs/mnist  # continue after Ctrl-C

The flags are those of ``npgan train`` (see ``--help``) and so is the code
path: this script only parses the command line and calls
:func:`npgan.cli.run_train`.

After every epoch (and once after the first step) it also measures the
generator on a fixed batch of noise with :class:`npgan.metrics.EpochMetrics`:
the Fréchet distance of classifier features to real held-out test digits and
the number of digit classes covered, written to ``metrics.json`` and plotted
beside the losses in ``metrics.png``. This needs the MNIST test split
(``--eval-data DIR``, or npgan's cache); ``--no-eval`` turns it off. A
resumed run starts a fresh ``metrics.json``.
"""

import sys

from npgan.cli import (
    Parser,
    add_common_arguments,
    add_train_arguments,
    execute,
    run_train,
)
from npgan.errors import DataError


def run_with_metrics(args):
    callbacks = []
    if args.eval and args.dataset == "mnist":
        from npgan.metrics import EpochMetrics, load_reference

        try:
            reference = load_reference(data_dir=args.eval_data, download=False)
        except DataError as err:
            if args.eval_data is not None:
                raise  # the user named a directory: say what is wrong with it
            print(f"no per-epoch metrics (MNIST test split not found: {err})")
        else:
            callbacks.append(EpochMetrics(reference, n=args.eval_samples))
    code = run_train(args, callbacks=callbacks)
    if callbacks and callbacks[0].records:
        last = callbacks[0].records[-1]
        print(
            f"  metrics  epoch {last['epoch']}: FD {last['fd']:.1f}, "
            f"{last['classes_covered']}/10 classes, "
            f"classifier score {last['classifier_score']:.2f}"
        )
    return code


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = Parser(
        prog="mnist.py",
        description="Train a GAN on MNIST (or Fashion-MNIST) with npgan.",
    )
    add_common_arguments(parser)
    add_train_arguments(parser)
    metrics = parser.add_argument_group("per-epoch metrics")
    metrics.add_argument(
        "--eval-data",
        metavar="DIR",
        help="directory with the MNIST test split, the real reference "
        "(default: npgan's cache)",
    )
    metrics.add_argument(
        "--eval-samples",
        type=int,
        default=1000,
        help="fixed samples measured each epoch (default: %(default)s)",
    )
    metrics.add_argument(
        "--no-eval", dest="eval", action="store_false", help="no per-epoch metrics"
    )
    return execute(
        run_with_metrics, parser.parse_args(argv), prog="mnist.py", argv=argv
    )


if __name__ == "__main__":
    sys.exit(main())
