"""Where the tests find real MNIST digits.

The MNIST test split lives in ``shared/data/mnist`` beside the repository
(``<repo>/../shared``); ``NPGAN_SHARED`` names another ``shared`` folder.
Tests that need the real digits are skipped, with this reason, when neither
holds them.
"""

import os
from pathlib import Path

import pytest


def shared_mnist_dir():
    """The directory holding ``t10k-images-idx3-ubyte.gz``, or None."""
    candidates = []
    env = os.environ.get("NPGAN_SHARED")
    if env:
        candidates += [Path(env) / "data" / "mnist", Path(env)]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    for c in candidates:
        if (c / "t10k-images-idx3-ubyte.gz").is_file():
            return c
    return None


SHARED_MNIST = shared_mnist_dir()
needs_shared_mnist = pytest.mark.skipif(
    SHARED_MNIST is None,
    reason="real MNIST t10k files not found (looked in $NPGAN_SHARED and "
    "<repo>/../shared/data/mnist)",
)
