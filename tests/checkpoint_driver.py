"""A process that trains a tiny GAN and checkpoints after every step, to be killed.

Run as ``python checkpoint_driver.py DIR LOG``. It imports NumPy once and then
serves lines on stdin:

``go``
    Fork a worker that resumes from the latest checkpoint in DIR (or starts
    from scratch), then loops forever: one training step, :func:`save` with
    ``keep=2``, and a line ``saved <step>`` appended to LOG. The driver
    prints the worker's pid and waits for it to die (the test kills it with
    SIGKILL), then prints ``reaped <signal>``.
``quit``
    Exit.

Forking keeps the cost of a kill to milliseconds instead of a fresh
interpreter start. :func:`build` is shared with the test, which replays the
same run in-process as the reference.
"""

import os
import sys

import numpy as np

from npgan import checkpoint
from npgan.gan import GAN, GANConfig
from npgan.train import Trainer

CONFIG = {
    "z_dim": 16,
    "data_dim": 64,
    "g_hidden": (64,),
    "d_hidden": (64,),
    "batch_size": 8,
}


def build():
    """The run's trainer at step 0: fixed seeds, 50 fixed images."""
    images = np.random.default_rng(7).integers(0, 256, (50, 64), dtype=np.uint8)
    gan = GAN(GANConfig(**CONFIG), rng=np.random.default_rng(8))
    return Trainer(gan, images, rng=np.random.default_rng(9))


def work(directory, log):
    trainer = build()
    found = checkpoint.latest(directory)
    if found is not None:
        checkpoint.restore(trainer, found)
    with open(log, "a") as out:
        while True:
            trainer.train_step()
            checkpoint.save(directory, trainer, keep=2)
            out.write(f"saved {trainer.step}\n")
            out.flush()


def main(directory, log):
    for line in sys.stdin:
        if line.strip() == "quit":
            return
        pid = os.fork()
        if pid == 0:
            try:
                work(directory, log)
            finally:
                os._exit(1)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"reaped {os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1}")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
