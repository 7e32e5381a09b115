"""File-system helpers shared by the modules that write files atomically."""

import os


def fsync_dir(directory):
    """Make a rename in ``directory`` durable where the OS allows it.

    Some platforms and file systems cannot open or sync a directory; there the
    rename is as durable as the OS makes it, and nothing is raised.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
