"""Train a GAN on MNIST digits and write samples, curves, history and networks.

    python examples/mnist.py                      # best source available
    python examples/mnist.py --data /work/shared/data/mnist --split test
    python examples/mnist.py --resume runs/mnist  # continue after Ctrl-C

The flags are those of ``npgan train`` (see ``--help``) and so is the code
path: this script only parses the command line and calls
:func:`npgan.cli.run_train`.
"""

import sys

from npgan.cli import (
    Parser,
    add_common_arguments,
    add_train_arguments,
    execute,
    run_train,
)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = Parser(
        prog="mnist.py",
        description="Train a GAN on MNIST (or Fashion-MNIST) with npgan.",
    )
    add_common_arguments(parser)
    add_train_arguments(parser)
    return execute(run_train, parser.parse_args(argv), prog="mnist.py", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
