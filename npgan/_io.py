"""File-system helpers shared by the modules that write files atomically."""

import os
import zipfile


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


_ZIP_MAGIC = b"PK\x03\x04"


def load_npz(path, what):
    """Every array of an ``.npz`` archive, loaded with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file should be ("model file", "checkpoint"), for messages.

    Returns
    -------
    dict of str -> ndarray

    Raises
    ------
    CheckpointError
        One line naming the file and why it cannot be read: missing, a
        directory, not a zip archive at all, or a damaged one.
    """
    from pathlib import Path

    import numpy as np

    from npgan.errors import CheckpointError

    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a {what}") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read it ({err.strerror})") from None
    if magic != _ZIP_MAGIC:
        raise CheckpointError(f"{path}: not a {what} (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        reason = str(err) or type(err).__name__
        raise CheckpointError(f"{path}: damaged {what} ({reason})") from None
