"""Checkpoints: a whole training run in one ``.npz`` file, written atomically.

A checkpoint holds everything :meth:`npgan.train.Trainer.state_dict` returns
(both networks' parameters, both optimizers' moments and step counts, the
sampler's shuffled order and position in it, the random generator's state,
the step and the history), plus the GAN's configuration, the npgan version
and a fingerprint of the data set.

File layout
-----------
An ordinary NumPy ``.npz`` archive that loads with ``allow_pickle=False``:

- ``meta``: a 0-d unicode array holding a JSON object (readable with
  ``json.loads(str(np.load(path)["meta"]))``): format name and version,
  npgan and NumPy versions, creation time, step, epoch, position in the
  epoch, the configuration, the random generator's state, the optimizers'
  step counts, the data fingerprint, caller-supplied ``extra`` values and a
  manifest of every array's shape and dtype.
- ``G/<name>``, ``D/<name>``: parameters (``"G/0.W"``, ...).
- ``G_ema/<name>``: the averaged generator's parameters, only when the
  configuration's ``ema`` is above 0.
- ``opt_g/<moment>.<name>``, ``opt_d/...``: Adam moments (``"opt_g/m.0.W"``).
- ``sampler/permutation``: the current epoch's order, int64 (M,).
- ``history/<column>``: int64 for ``step`` and ``epoch``, float64 otherwise.

Writing
-------
:func:`write` serialises into a temporary file in the target's directory,
flushes and ``fsync``\\ s it, renames it over the target and syncs the
directory. A reader therefore sees the previous file or the new one, never a
mixture, even if the writer is killed. :func:`save` names files
``checkpoint-<step>.npz`` in a directory and keeps the newest few.
"""

import json
import os
import re
import secrets
import warnings
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from npgan import __version__
from npgan._io import fsync_dir
from npgan.errors import CheckpointError, ConfigError, NonFiniteError
from npgan.gan import GANConfig
from npgan.train import HISTORY_KEYS, Trainer

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "Checkpointer",
    "checkpoint_path",
    "list_checkpoints",
    "latest",
    "load",
    "restore",
    "save",
    "write",
]

#: Format name stored in every checkpoint's metadata.
FORMAT = "npgan-checkpoint"
#: Version of the layout described in this module's docstring.
FORMAT_VERSION = 1

_NAME = re.compile(r"^checkpoint-(\d+)\.npz$")
_TMP = re.compile(r"^\.checkpoint-\d+\.npz\.[0-9a-f]+\.tmp$")
_INT_COLUMNS = ("step", "epoch")


# ---------------------------------------------------------------------------
# Trainer state <-> arrays and metadata
# ---------------------------------------------------------------------------


def _flatten(state):
    """Split a Trainer state into named arrays and JSON-able scalars."""
    arrays = {}
    for part in ("G", "D", "G_ema"):
        for name, a in state.get(part, {}).items():
            arrays[f"{part}/{name}"] = a
    for part in ("opt_g", "opt_d"):
        for name, a in state[part].items():
            if name != "t":
                arrays[f"{part}/{name}"] = a
    arrays["sampler/permutation"] = state["sampler"]["permutation"]
    for key in HISTORY_KEYS:
        dtype = np.int64 if key in _INT_COLUMNS else np.float64
        arrays[f"history/{key}"] = np.asarray(state["history"][key], dtype=dtype)
    scalars = {
        "step": int(state["step"]),
        "epoch": int(state["sampler"]["epoch"]),
        "position": int(state["sampler"]["position"]),
        "opt_g_t": int(state["opt_g"]["t"]),
        "opt_d_t": int(state["opt_d"]["t"]),
        "rng": state["rng"],
    }
    return arrays, scalars


def _unflatten(arrays, meta):
    """Inverse of :func:`_flatten`: a state for ``Trainer.load_state_dict``."""
    state = {
        "step": meta["step"],
        "G": {},
        "D": {},
        "opt_g": {"t": meta["opt_g_t"]},
        "opt_d": {"t": meta["opt_d_t"]},
        "sampler": {
            "permutation": arrays["sampler/permutation"],
            "position": meta["position"],
            "epoch": meta["epoch"],
        },
        "rng": meta["rng"],
        "history": {key: arrays[f"history/{key}"].tolist() for key in HISTORY_KEYS},
    }
    for key, a in arrays.items():
        part, _, name = key.partition("/")
        if part in ("G", "D", "G_ema", "opt_g", "opt_d"):
            state.setdefault(part, {})[name] = a
    return state


def _check_state_finite(state):
    for part, label in (
        ("G", "generator parameter"),
        ("D", "discriminator parameter"),
        ("G_ema", "averaged generator parameter"),
        ("opt_g", "generator optimizer state"),
        ("opt_d", "discriminator optimizer state"),
    ):
        for name, a in state.get(part, {}).items():
            if name != "t" and not np.isfinite(a).all():
                raise NonFiniteError(
                    f"step {state['step']}: {label} '{name}' is not finite; "
                    "refusing to write a checkpoint"
                )


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def write(path, trainer, *, fingerprint=None, extra=None):
    """Write ``trainer``'s whole state to ``path``, atomically.

    The state goes into a temporary file next to ``path``, which is flushed,
    synced and then renamed over ``path``; a crash at any moment leaves
    either the old file or the new one.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; its directory must exist.
    trainer : Trainer
    fingerprint : str or None
        :func:`npgan.data.fingerprint` of the training set;
        :func:`restore` compares it.
    extra : dict or None
        JSON-serialisable values stored as ``meta["extra"]`` (for instance a
        command line's own settings).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    NonFiniteError
        If a parameter or optimizer moment is not finite (nothing is written).
    CheckpointError
        If the file cannot be written, or ``extra`` is not JSON-serialisable.
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"write: trainer must be a Trainer, got {type(trainer)}")
    path = Path(path)
    state = trainer.state_dict()
    _check_state_finite(state)
    arrays, scalars = _flatten(state)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "npgan_version": __version__,
        "numpy_version": np.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **scalars,
        "config": trainer.gan.config.to_dict(),
        "data_fingerprint": fingerprint,
        "history_keys": list(HISTORY_KEYS),
        "arrays": {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()},
        "extra": extra if extra is not None else {},
    }
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint metadata is not JSON: {err}") from err
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        # Permissions as for any new file under the umask (mkstemp would be
        # private to the user).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array(text), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise CheckpointError(
                f"cannot write checkpoint {path}: {err.strerror or err}"
            ) from err
        raise
    fsync_dir(path.parent)
    return path


def checkpoint_path(directory, step):
    """The file name :func:`save` uses for ``step`` in ``directory``."""
    return Path(directory) / f"checkpoint-{int(step):08d}.npz"


def list_checkpoints(directory):
    """Checkpoint files written by :func:`save` in ``directory``, oldest first.

    Returns
    -------
    list of pathlib.Path
        Sorted by step; empty if the directory has none or does not exist.
    """
    directory = Path(directory)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise CheckpointError(
            f"cannot list checkpoint directory {directory}: {err.strerror}"
        ) from err
    found = [(int(m.group(1)), n) for n in names if (m := _NAME.match(n))]
    return [directory / n for _, n in sorted(found)]


def latest(directory):
    """The newest checkpoint (highest step) in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save(directory, trainer, *, keep=3, fingerprint=None, extra=None):
    """Write ``checkpoint-<step>.npz`` into ``directory`` and rotate old ones.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing.
    trainer : Trainer
    keep : int
        How many checkpoints to keep, >= 1: the one just written and the
        ``keep - 1`` newest others. Temporary files left by a writer that was
        killed are removed too. One writer per directory.
    fingerprint, extra
        See :func:`write`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    NonFiniteError, CheckpointError
        See :func:`write`; also if the directory cannot be created.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"keep must be an integer >= 1, got {keep!r}")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(
            f"cannot create checkpoint directory {directory}: {err.strerror or err}"
        ) from err
    path = write(
        checkpoint_path(directory, trainer.step),
        trainer,
        fingerprint=fingerprint,
        extra=extra,
    )
    others = [p for p in list_checkpoints(directory) if p != path]
    newer = [p for p in others if _step_of(p) > trainer.step]
    if newer:
        warnings.warn(
            f"{directory} holds checkpoints after step {trainer.step} "
            f"({newer[-1].name}); latest() will pick those, not {path.name}",
            stacklevel=2,
        )
    for old in others[: max(len(others) - (keep - 1), 0)]:
        _unlink_quietly(old)
    for name in os.listdir(directory):
        if _TMP.match(name):
            _unlink_quietly(directory / name)
    return path


def _step_of(path):
    return int(_NAME.match(path.name).group(1))


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        warnings.warn(f"cannot remove old checkpoint {path}: {err}", stacklevel=3)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read into memory and checked for consistency.

    Attributes
    ----------
    path : pathlib.Path
    meta : dict
        The decoded JSON metadata.
    arrays : dict of str -> ndarray
        Every array but ``meta``, as stored.
    """

    path: Path
    meta: dict
    arrays: dict

    @property
    def config(self):
        """The :class:`~npgan.gan.GANConfig` of the saved run."""
        return GANConfig.from_dict(self.meta["config"])

    @property
    def step(self):
        """Iterations completed when it was written."""
        return self.meta["step"]

    @property
    def extra(self):
        """The ``extra`` dict given to :func:`write`."""
        return self.meta["extra"]

    def trainer_state(self):
        """The state in the form of :meth:`npgan.train.Trainer.state_dict`."""
        return _unflatten(self.arrays, self.meta)


_META_FIELDS = {
    "format": str,
    "format_version": int,
    "npgan_version": str,
    "step": int,
    "epoch": int,
    "position": int,
    "opt_g_t": int,
    "opt_d_t": int,
    "rng": dict,
    "config": dict,
    "history_keys": list,
    "arrays": dict,
    "extra": dict,
}


def load(path):
    """Read and check a checkpoint file.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file, or a directory: then its :func:`latest` one.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, not a checkpoint, of a newer
        format, or its arrays disagree with its own manifest; the message
        names the file and the problem.

    Warns
    -----
    UserWarning
        If it was written by another npgan version.
    """
    path = Path(path)
    if path.is_dir():
        found = latest(path)
        if found is None:
            raise CheckpointError(f"no checkpoint-*.npz files in {path}")
        path = found
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no such checkpoint file") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({err or type(err).__name__})"
        ) from err
    if "meta" not in contents or contents["meta"].shape != ():
        raise CheckpointError(f"{path}: not an npgan checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(str(contents.pop("meta")[()]))
    except ValueError as err:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not an npgan checkpoint (format is not {FORMAT!r})"
        )
    for field, kind in _META_FIELDS.items():
        value = meta.get(field)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(
                f"{path}: metadata field '{field}' should be {kind.__name__}, "
                f"got {value!r:.60}"
            )
    if meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {meta['format_version']} is newer than "
            f"this npgan ({__version__}) reads (up to {FORMAT_VERSION})"
        )
    if meta["history_keys"] != list(HISTORY_KEYS):
        raise CheckpointError(
            f"{path}: history columns {meta['history_keys']} differ from "
            f"{list(HISTORY_KEYS)}"
        )
    manifest = meta["arrays"]
    if set(manifest) != set(contents):
        missing = sorted(set(manifest) - set(contents))
        extra = sorted(set(contents) - set(manifest))
        raise CheckpointError(
            f"{path}: arrays do not match the manifest: missing {missing}, "
            f"unexpected {extra}"
        )
    for name, a in contents.items():
        shape, dtype = manifest[name]
        if list(a.shape) != shape or a.dtype.str != dtype:
            raise CheckpointError(
                f"{path}: array '{name}' is {a.shape} {a.dtype.str}, the "
                f"manifest says {tuple(shape)} {dtype}"
            )
    if meta["npgan_version"] != __version__:
        warnings.warn(
            f"{path} was written by npgan {meta['npgan_version']}, this is "
            f"{__version__}",
            stacklevel=2,
        )
    return Checkpoint(path=path, meta=meta, arrays=contents)


def _describe(value):
    return json.dumps(value) if isinstance(value, (list, str)) else repr(value)


def restore(trainer, checkpoint, *, fingerprint=None):
    """Load a checkpoint into ``trainer`` so that it continues the saved run.

    Parameters
    ----------
    trainer : Trainer
        Built on a GAN with the checkpoint's configuration and on the same
        images (its own parameters and random state do not matter).
    checkpoint : Checkpoint, str or os.PathLike
        A :class:`Checkpoint`, or a path given to :func:`load`.
    fingerprint : str or None
        The training set's :func:`npgan.data.fingerprint`; compared with the
        stored one when both are known.

    Returns
    -------
    Checkpoint
        The checkpoint loaded.

    Raises
    ------
    CheckpointError
        Naming every configuration field that differs, a data fingerprint
        that differs, or the first array whose name, shape or dtype does not
        fit; the trainer is then unchanged.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load(checkpoint)
    path = checkpoint.path
    # Fields added after a checkpoint was written take their defaults.
    saved = {**GANConfig().to_dict(), **checkpoint.meta["config"]}
    ours = trainer.gan.config.to_dict()
    diffs = [
        f"{key} {_describe(saved.get(key))} (checkpoint) vs "
        f"{_describe(ours.get(key))} (here)"
        for key in sorted(set(saved) | set(ours))
        if saved.get(key) != ours.get(key)
    ]
    if diffs:
        raise CheckpointError(f"{path}: configuration differs: " + "; ".join(diffs))
    stored = checkpoint.meta.get("data_fingerprint")
    if fingerprint is not None and stored is not None and stored != fingerprint:
        raise CheckpointError(
            f"{path}: written for a data set with fingerprint {stored}, this "
            f"data set has {fingerprint}"
        )
    try:
        trainer.load_state_dict(checkpoint.trainer_state())
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    return checkpoint


class Checkpointer:
    """Save a trainer every few steps; usable as a training-loop callback.

    Parameters
    ----------
    trainer : Trainer
    directory : str or os.PathLike
        Where :func:`save` writes.
    every : int
        Save when the step count is a multiple of ``every``; 0 saves only
        when :meth:`save` is called.
    keep, fingerprint
        Passed to :func:`save`.
    extra : dict, callable or None
        Passed to :func:`save`; a callable is called at each save and must
        return the dict (for values that change, such as elapsed time).

    Attributes
    ----------
    last : pathlib.Path or None
        The newest checkpoint written or restored; the last good one.
    """

    def __init__(
        self, trainer, directory, *, every=0, keep=3, fingerprint=None, extra=None
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ConfigError(f"every must be an integer >= 0, got {every!r}")
        self.trainer = trainer
        self.directory = Path(directory)
        self.every = every
        self.keep = keep
        self.fingerprint = fingerprint
        self.extra = extra
        self.last = None

    def save(self):
        """Save now, unless the current step is already saved; return the path."""
        path = checkpoint_path(self.directory, self.trainer.step)
        if self.last != path:
            self.last = save(
                self.directory,
                self.trainer,
                keep=self.keep,
                fingerprint=self.fingerprint,
                extra=self.extra() if callable(self.extra) else self.extra,
            )
        return self.last

    def __call__(self, *_):
        """Callback form (any arguments): save if the step is due."""
        if self.every and self.trainer.step % self.every == 0:
            self.save()
