"""Issue 30, "nothing lost, ever": `book-runs` and every entry point keep the
one-line promise, and no typo deletes a finished run.

Each section below is one case of the issue (1–9). A command line that is
wrong prints one `error:` line and exits 2, before it touches any file; a
finished run is never deleted to make room for another; nothing is left behind.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npgan import GANConfig, bookruns, build, checkpoint, models
from test_robustness import assert_one_line, chattr_immutable, parts, tmpfs  # noqa: F401 (fixtures)

SMALL = dict(latent_dim=8, g_hidden=(16,), d_hidden=(16,), batch_size=8)


@pytest.fixture(scope="module")
def small_gan(tmp_path_factory):
    return checkpoint.save(build(GANConfig(**SMALL), seed=1),
                           tmp_path_factory.mktemp("ck") / "small.npz", epoch=1, seed=0)


@pytest.fixture(scope="module")
def small_infogan(tmp_path_factory):
    from npgan import InfoGANConfig

    config = InfoGANConfig(latent_dim=5, n_cat=3, n_cont=2, g_hidden=(8, 4), d_hidden=(6, 5),
                           batch_size=4, d_dropout=0.0)
    return checkpoint.save(build(config, seed=1), tmp_path_factory.mktemp("ck") / "info.npz")


def snapshot_of(folder):
    """{name: bytes} of every file under ``folder`` (to show that nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


def broken_mnist(data):
    """A data folder whose training images cannot be read (a folder in their place):
    a command that got as far as the data fails there, quickly and without a download."""
    (data / "mnist" / "train-images-idx3-ubyte").mkdir(parents=True)
    return data


def finished_book_run(data, name, epochs=None, subset=None, seed=0, every=10):
    """A stand-in for a finished book run in ``data``/runs: run.npz with the facts
    book_run writes, and its checkpoints (marker bytes: they are only compared)."""
    config = models.book_config(name)
    epochs = epochs or models.BOOK_EPOCHS[name]
    folder = data / "runs" / (f"book-{name}" + (f"-subset{subset}" if subset else ""))
    folder.mkdir(parents=True)
    facts = {"model": name, "config": json.loads(config.to_json()), "epochs": epochs, "seed": seed,
             "dataset": "mnist", "subset": subset, "every": every, "seconds": 1.0}
    with open(folder / "run.npz", "wb") as f:
        np.savez(f, facts=np.frombuffer(json.dumps(facts).encode(), np.uint8))
    for epoch in range(every, epochs + 1, every):
        (folder / f"epoch_{epoch:03d}.npz").write_bytes(f"checkpoint {epoch}".encode())
    (folder / "history.csv").write_text("epoch,iteration,d_loss,g_loss,d_real,d_fake\n")
    return folder


def guarded_run(tmp_path, name):
    """(data folder, run folder, its snapshot) for a finished book run of ``name`` beside
    broken MNIST files: a command that went on to train would fail on the data, and a
    command that replaced the run would change the snapshot."""
    data = broken_mnist(tmp_path / "data")
    run = finished_book_run(data, name)
    return data, run, snapshot_of(run)


# ---------------------------------------------------------------- 1. data loss

@pytest.mark.parametrize("args,needle", [
    (["--subset", "0"], "--subset must be between the batch size (64) and 60000, got 0"),
    (["--subset", "-5"], "--subset must be between the batch size (64) and 60000, got -5"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--epochs=-2"], "--epochs must be at least 1, got -2"),
    (["--labels=-3"], "--labels must be at least 0, got -3"),
], ids=["subset 0", "subset -5", "epochs 0", "epochs -2", "labels -3"])
def test_book_runs_typo_deletes_nothing(run_cli, tmp_path, args, needle):
    data, run, before = guarded_run(tmp_path, "infogan")
    result = run_cli("book-runs", "--only", "infogan", "--epochs", "1", *args,
                     env={"NPGAN_DATA": str(data)}, timeout=60)
    assert_one_line(result, needle)
    assert snapshot_of(run) == before


def test_book_runs_with_other_settings_never_replaces_a_finished_run(run_cli, tmp_path):
    data, run, before = guarded_run(tmp_path, "gan")
    result = run_cli("book-runs", "--only", "gan", "--epochs", "5", env={"NPGAN_DATA": str(data)},
                     timeout=60)
    assert_one_line(result, f"{run} holds the book's finished GAN run (70 epochs, seed 0)",
                    "add --replace", "train --model gan --epochs 5 --out")
    assert snapshot_of(run) == before
    # the side-by-side command checks every run it would start, before it starts one
    result = run_cli("book-runs", "--epochs", "5", env={"NPGAN_DATA": str(data)}, timeout=60)
    assert_one_line(result, "add --replace")
    assert snapshot_of(run) == before


def test_book_runs_labels_for_another_model_is_one_line(run_cli, tmp_path):
    data, run, before = guarded_run(tmp_path, "gan")
    result = run_cli("book-runs", "--only", "gan", "--labels", "100", env={"NPGAN_DATA": str(data)},
                     timeout=60)
    assert_one_line(result, "--labels: only the InfoGAN learns from labelled images; add --only infogan")
    assert snapshot_of(run) == before


def test_a_run_of_an_earlier_recipe_is_the_book_s_old_run_and_is_replaced(tmp_path, monkeypatch):
    """The book changed a recipe and its epochs together (WGAN: n_critic 5 and 60 epochs,
    then n_critic 2 and 50): the old run is no learner's, and make book must not stop at it."""
    monkeypatch.setenv("NPGAN_DATA", str(broken_mnist(tmp_path / "data")))
    finished_book_run(tmp_path / "data", "wgan", epochs=60)
    old = dataclasses.replace(models.book_config("wgan"), n_critic=5, lr_d=1e-4, lr_g=1e-4)
    facts_path = tmp_path / "data" / "runs" / "book-wgan" / "run.npz"
    with np.load(facts_path) as f:
        facts = json.loads(bytes(f["facts"]).decode())
    facts["config"] = json.loads(old.to_json())
    with open(facts_path, "wb") as f:
        np.savez(f, facts=np.frombuffer(json.dumps(facts).encode(), np.uint8))
    bookruns.check_replace("wgan", epochs=50)            # no RunExists: an earlier edition's run
    with pytest.raises(bookruns.RunExists):                # the same recipe with other epochs: asked
        finished = tmp_path / "data" / "runs" / "book-gan"
        finished_book_run(tmp_path / "data", "gan", epochs=60)
        bookruns.check_replace("gan", epochs=50)
    assert finished.is_dir()


def test_book_run_api_refuses_to_replace_without_replace(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(broken_mnist(tmp_path / "data")))
    run = finished_book_run(tmp_path / "data", "gan", epochs=2, subset=640, every=1)
    before = snapshot_of(run)
    with pytest.raises(bookruns.RunExists, match="pass replace=True"):
        bookruns.book_run("gan", epochs=3, subset=640)
    assert snapshot_of(run) == before


def test_train_out_empty_is_refused(run_cli, tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"a finished run's checkpoint")
    result = run_cli("train", "--out", "", "--epochs", "1", timeout=60, cwd=tmp_path)
    assert_one_line(result, "--out is empty")
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"a finished run's checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


# ---------------------------------------------------------------- 2. hangs and noise

@pytest.mark.parametrize("jobs", ["-1", "0"])
def test_book_runs_jobs_below_one_is_one_line(run_cli, tmp_path, jobs):
    data = broken_mnist(tmp_path / "data")
    result = run_cli("book-runs", f"--jobs={jobs}", "--subset", "640", "--epochs", "1",
                     env={"NPGAN_DATA": str(data)}, timeout=30)
    assert_one_line(result, f"--jobs must be at least 1, got {jobs}")
    assert result.stdout == "" and not (data / "runs").exists()


def test_book_runs_checks_in_the_parent_before_any_child_starts(run_cli, tmp_path):
    data = broken_mnist(tmp_path / "data")
    result = run_cli("book-runs", "--jobs", "1", "--subset", "10", "--epochs", "1",
                     env={"NPGAN_DATA": str(data)}, timeout=60)
    assert_one_line(result, "--subset must be between the batch size (64) and 60000, got 10")
    assert result.stdout == "" and not (data / "runs").exists()


def test_side_by_side_api_refuses_jobs_below_one():
    with pytest.raises(ValueError, match="jobs must be a whole number ≥ 1, got -1"):
        bookruns.train_side_by_side(jobs=-1, log=lambda _: None)


# ---------------------------------------------------------------- 3. environment

@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", ""])
def test_a_bad_npgan_threads_is_one_line_before_any_folder_is_made(run_cli, tmp_path, value):
    if value == "":
        value = " x "
    out = tmp_path / "a" / "run"
    result = run_cli("train", "--out", out, "--epochs", "1", env={"NPGAN_THREADS": value}, timeout=60)
    assert_one_line(result, f"NPGAN_THREADS must be a whole number of threads ≥ 1, got {value!r}")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("value", ["64", "99999999999999999999"])
def test_npgan_threads_above_the_cores_is_capped_with_a_notice(run_cli, mnist_dir, tmp_path, value):
    from npgan.threads import available_cores

    result = run_cli("--data-dir", mnist_dir.parent, "train", "--epochs", "1", "--subset", "640",
                     "--quiet", "--out", tmp_path / "run", env={"NPGAN_THREADS": value}, timeout=120)
    assert result.returncode == 0, result.stderr
    cores = available_cores()
    assert result.stderr == (f"notice: NPGAN_THREADS={value} is more than the {cores} cores of this "
                             f"machine, which only slows training down; using {cores}\n")


def test_choose_threads_caps_the_environment_at_the_cores(monkeypatch):
    from npgan.threads import available_cores, choose_threads

    monkeypatch.setenv("NPGAN_THREADS", "64")
    assert choose_threads() == min(64, available_cores())
    monkeypatch.setenv("NPGAN_THREADS", "99999999999999999999")
    assert choose_threads() == available_cores()


# ---------------------------------------------------------------- 4. extreme numbers

@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "nan"])
def test_an_infinite_code_is_one_line(run_cli, small_infogan, tmp_path, value):
    result = run_cli("sample", "--checkpoint", small_infogan, "--code", f"c1={value}",
                     "--out", tmp_path / "s.npy", timeout=60)
    assert_one_line(result, "argument --code: c1 must be a finite number", f"got 'c1={value}'")
    assert list(tmp_path.iterdir()) == []


def test_set_codes_refuses_an_infinite_category(small_infogan):
    model, _ = checkpoint.load(small_infogan)
    g_in = model.sample_noise(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="c1 must be a whole number 0–2, got inf"):
        model.set_codes(g_in, {"c1": float("inf")})


def test_a_code_that_overflows_g_is_one_line(run_cli, small_infogan, tmp_path):
    result = run_cli("sample", "--checkpoint", small_infogan, "--code", "c2=1e300",
                     "--out", tmp_path / "s.npy", timeout=60)
    assert_one_line(result, "--code c2=1e+300: G's images are not finite numbers")
    assert list(tmp_path.iterdir()) == []


def test_finite_weights_that_overflow_in_g_are_refused(run_cli, tmp_path):
    model = build(GANConfig(**SMALL), seed=1)
    model.G.flat_params[:] = np.where(np.arange(model.G.flat_params.size) % 2, 3e38, -3e38)
    model.G_average.net.flat_params[:] = model.G.flat_params
    path = checkpoint.save(model, tmp_path / "huge.npz")
    result = run_cli("sample", "--checkpoint", path, "--out", tmp_path / "s.npy", timeout=60)
    assert_one_line(result, f"{path}: G's images are not finite numbers", "train again")
    assert not (tmp_path / "s.npy").exists() and parts(tmp_path) == []
    result = run_cli("evaluate", "--checkpoint", path, timeout=300)
    assert_one_line(result, "NaN or infinite pixels")


def test_a_learning_rate_of_1e308_is_only_the_divergence_line(run_cli, mnist_dir, tmp_path):
    result = run_cli("--data-dir", mnist_dir.parent, "train", "--lr", "1e308", "--epochs", "1",
                     "--subset", "640", "--quiet", "--out", tmp_path / "run", timeout=120)
    assert_one_line(result, "training diverged at iteration 1")


def test_deeply_nested_meta_is_refused(run_cli, small_gan, tmp_path):
    with np.load(small_gan) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["meta"] = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)
    path = tmp_path / "nested.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="nested too deeply"):
        checkpoint.load(path)
    assert_one_line(run_cli("sample", "--checkpoint", path, "--out", tmp_path / "s.npy", timeout=60),
                    f"{path}: not a valid npgan checkpoint", "nested too deeply")


# ---------------------------------------------------------------- 5. checks before long work

def linked_cache(cache, mnist_dir, skip=()):
    (cache / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        if name not in skip:
            (cache / "mnist" / name).symlink_to(mnist_dir / name)
    return cache


def test_evaluate_checks_its_data_before_training_the_evaluator(run_cli, mnist_dir, small_gan, tmp_path):
    cache = linked_cache(tmp_path / "cache", mnist_dir, skip=("t10k-images-idx3-ubyte",))
    (cache / "mnist" / "t10k-images-idx3-ubyte").mkdir()    # cannot be read or fetched
    result = run_cli("evaluate", "--checkpoint", small_gan, env={"NPGAN_DATA": str(cache)}, timeout=60)
    assert_one_line(result, str(cache / "mnist" / "t10k-images-idx3-ubyte"), "not a regular file")
    assert not (cache / "evaluator-2.npz").exists()


def test_evaluate_with_an_immutable_data_folder_is_one_line(run_cli, mnist_dir, small_gan, tmp_path,
                                                            chattr_immutable):
    cache = chattr_immutable(linked_cache(tmp_path / "cache", mnist_dir))
    result = run_cli("evaluate", "--checkpoint", small_gan, env={"NPGAN_DATA": str(cache)}, timeout=60)
    from npgan.evaluator import evaluator_path

    cached_name = evaluator_path().name   # the file name of the evaluator's current version
    assert_one_line(result, f"cannot cache the evaluator: cannot write {cache / cached_name}",
                    "Operation not permitted", "set NPGAN_DATA")


@pytest.mark.parametrize("name", ["gan", "cgan", "wgan", "infogan", "dcgan"])
def test_the_checkpoint_estimate_covers_the_file(tmp_path, name):
    from npgan.cli_commands import checkpoint_bytes

    model = build(models.book_config(name))
    size = checkpoint.save(model, tmp_path / "ck.npz").stat().st_size
    assert size <= checkpoint_bytes(model) < size + 100_000


def test_train_finds_too_little_room_for_the_averaged_g_before_training(run_cli, mnist_dir, tmpfs):
    small = tmpfs("small", "size=14800k")    # 15.2 MB: the old estimate (14.1 MB) fit, the file does not
    result = run_cli("--data-dir", mnist_dir.parent, "train", "--epochs", "1", "--subset", "640",
                     "--quiet", "--out", small, timeout=120)
    assert_one_line(result, f"cannot write {small / 'checkpoint.npz'}: it needs 15.4 MB, only")
    assert list(small.iterdir()) == []


def test_evaluate_json_checks_free_space_before_evaluating(run_cli, small_gan, tmp_path, tmpfs):
    full = tmpfs("full", "size=64k")
    with open(full / "filler", "wb") as f:
        try:
            f.write(b"\0" * 1_000_000)
        except OSError:
            pass
    (tmp_path / "a-file").write_text("x")   # as NPGAN_DATA: an evaluation would fail on it
    result = run_cli("evaluate", "--checkpoint", small_gan, "--json", full / "r.json",
                     env={"NPGAN_DATA": str(tmp_path / "a-file")}, timeout=60)
    assert_one_line(result, f"cannot write {full / 'r.json'}: it needs", "are free in")


def test_a_full_stdout_says_it_was_stdout(small_gan, tmp_path):
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "npgan", "sample", "--checkpoint", str(small_gan),
                                 "--n", "3", "--out", str(tmp_path / "s.npy")], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert_one_line(result, "cannot write to standard output: No space left on device")


# ---------------------------------------------------------------- 6. signals

def start_sampling(checkpoint_path, out):
    proc = subprocess.Popen([sys.executable, "-m", "npgan", "sample", "--checkpoint", str(checkpoint_path),
                             "--n", "2000000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60

    def writing():   # the samples' .part, not check_writable's empty probe
        for name in parts(out.parent):
            try:
                if (out.parent / name).stat().st_size > 0:
                    return True
            except FileNotFoundError:
                pass
        return False

    while not writing() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert writing(), "sample never started writing"
    return proc


@pytest.mark.parametrize("signals,code", [
    ((signal.SIGINT, signal.SIGINT), 130),
    ((signal.SIGTERM, signal.SIGTERM, signal.SIGTERM), 128 + signal.SIGTERM),
    ((signal.SIGHUP,), 128 + signal.SIGHUP),
], ids=["two Ctrl-C", "three SIGTERM", "SIGHUP"])
def test_signals_in_quick_succession_end_cleanly(small_gan, tmp_path, signals, code):
    for attempt in range(4):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        proc = start_sampling(small_gan, folder / "s.npy")
        try:
            for sig in signals:
                proc.send_signal(sig)
                time.sleep(0.005)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == code, stderr
        assert stderr == ("interrupted\n" if code == 130 else "terminated\n"), stderr
        assert list(folder.iterdir()) == []


# ---------------------------------------------------------------- 7. leftovers

def test_a_failed_train_removes_the_folders_it_made(run_cli, tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = run_cli("--data-dir", tmp_path / "a-file", "train", "--epochs", "1",
                     "--out", tmp_path / "new" / "deeper" / "run", timeout=60)
    assert_one_line(result, "a-file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_out_through_a_symbolic_link_writes_the_file_it_points_to(run_cli, small_gan, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "samples.npy"
    target.write_bytes(b"old")
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    result = run_cli("sample", "--checkpoint", small_gan, "--n", "3", "--out", link, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"to {link} (a link to {target})" in result.stdout
    assert link.is_symlink() and np.load(target).shape == (3, 28, 28)


def test_a_dangling_link_into_a_missing_folder_is_refused(run_cli, small_gan, tmp_path):
    link = tmp_path / "link.npy"
    link.symlink_to(tmp_path / "gone" / "s.npy")
    result = run_cli("sample", "--checkpoint", small_gan, "--out", link, timeout=60)
    assert_one_line(result, f"cannot write {link}: it is a link to {tmp_path / 'gone' / 's.npy'}",
                    f"folder {tmp_path / 'gone'} does not exist")
    assert link.is_symlink() and not (tmp_path / "gone").exists()


# ---------------------------------------------------------------- 8. the Python API

def gan_and_cgan():
    return build(GANConfig(**SMALL)), build(GANConfig(n_classes=10, **SMALL))


def api_cases():
    from npgan import DCGAN, DCGANConfig, GAN, image_grid, load_mnist
    from npgan.layers import Linear, mlp
    from npgan.optim import SGD, Adam

    gan, cgan = gan_and_cgan()
    rng = np.random.default_rng(0)
    p = np.zeros(4, np.float32)
    return {
        "1-D z": (lambda: gan.generate(np.zeros(8, np.float32)), "z must have shape (N, 8), got (8,)"),
        "1-D z, DCGAN": (lambda: build(DCGANConfig(g_channels=(8, 4), d_channels=(4, 8), latent_dim=4))
                         .generate(np.zeros(4, np.float32)), "z must have shape (N, 4), got (4,)"),
        "wrong z width": (lambda: gan.generate(np.zeros((3, 5), np.float32)),
                          "z must have shape (N, 8), got (3, 5)"),
        "label count": (lambda: cgan.generate(np.zeros((3, 8), np.float32), [1, 2]),
                        "expected 3 labels in a 1-D array, got shape (2,)"),
        "Adam lr -1": (lambda: Adam(p, p.copy(), lr=-1), "Adam: lr must be a finite number ≥ 0, got -1"),
        "Adam beta1 1": (lambda: Adam(p, p.copy(), beta1=1.0), "Adam: beta1 must be a finite number in [0, 1)"),
        "Adam shapes": (lambda: Adam(p, np.zeros(5, np.float32)),
                        "Adam: params and grads must be arrays of one shape, got (4,) and (5,)"),
        "SGD lr nan": (lambda: SGD(p, p.copy(), lr=float("nan")), "SGD: lr must be a finite number ≥ 0"),
        "grid n_cols 0": (lambda: image_grid(np.zeros((4, 784)), n_cols=0),
                          "n_cols must be a whole number ≥ 1, got 0"),
        "grid pad -1": (lambda: image_grid(np.zeros((4, 784)), pad=-1), "pad must be a whole number ≥ 0, got -1"),
        "mlp swish": (lambda: mlp((4, 3, 2), "swish", None, rng),
                      "hidden_activation must be one of 'relu', 'leaky_relu', 'tanh', 'sigmoid' or None, "
                      "got 'swish'"),
        "Linear 0": (lambda: Linear(0, 5, rng), "Linear: n_in must be a whole number ≥ 1, got 0"),
        "GAN seed -1": (lambda: GAN(GANConfig(**SMALL), seed=-1), "seed must be a whole number ≥ 0, got -1"),
        "GAN seed 1.5": (lambda: GAN(GANConfig(**SMALL), seed=1.5), "seed must be a whole number ≥ 0, got 1.5"),
        "GAN of a CGAN config": (lambda: GAN(GANConfig(n_classes=10, **SMALL)),
                                 "GAN does not take a config with n_classes=10; use CGAN(config), or "
                                 "npgan.build(config), which picks the model"),
        "load_mnist subset 2.5": (lambda: load_mnist(subset=2.5),
                                  "subset must be a whole number between 1 and 60000, got 2.5"),
        "DCGAN seed": (lambda: DCGAN(DCGANConfig(g_channels=(8, 4), d_channels=(4, 8)), seed="0"),
                       "seed must be a whole number ≥ 0, got '0'"),
    }


@pytest.mark.parametrize("case", sorted(api_cases()))
def test_the_api_names_the_bad_argument(mnist_dir, case):
    make, needle = api_cases()[case]
    with pytest.raises(ValueError) as info:
        make()
    assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("value,needle", [
    (None, None), (["a"], "snapshot_epochs must be whole numbers ≥ 0, got 'a'"),
    ([-5], "snapshot_epochs must be whole numbers ≥ 0, got -5"),
    (5, "snapshot_epochs must be a list of epochs such as [0, 5, 20], got 5"),
])
def test_train_checks_snapshot_epochs(value, needle):
    from npgan import train

    model = build(GANConfig(**SMALL))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 784)).astype(np.float32)
    if needle is None:   # None: no snapshots but the first and the last
        assert sorted(train(model, images, snapshot_epochs=value, progress=False).snapshots) == [0, 1]
        return
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        train(model, images, snapshot_epochs=value, progress=False)
    assert model.opt_d.t == 0


def test_training_on_nan_images_leaves_the_model_as_it_was():
    from npgan import train

    model = build(GANConfig(**SMALL))
    before = (model.G.flat_params.copy(), model.D.flat_params.copy())
    images = np.random.default_rng(0).uniform(-1, 1, (16, 784)).astype(np.float32)
    images[9, 100] = np.nan
    with pytest.raises(ValueError, match=r"images hold NaN or infinite values \(row 9 first\)"):
        train(model, images, progress=False)
    assert np.array_equal(model.G.flat_params, before[0]) and np.array_equal(model.D.flat_params, before[1])


def test_a_diverged_step_restores_the_weights_of_the_last_good_epoch():
    from npgan import TrainingDiverged, train

    model = build(GANConfig(**SMALL))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 784)).astype(np.float32)
    train(model, images, epochs=1, progress=False)
    good = {name: net.flat_params.copy() for name, (net, _) in checkpoint._networks(model).items()}
    model.opt_d.lr = model.opt_g.lr = 1e308   # the next step makes the weights infinite
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="weights are restored to those before this training"):
        train(model, images, epochs=1, progress=False)
    for name, (net, _) in checkpoint._networks(model).items():
        assert np.array_equal(net.flat_params, good[name]), name


# ---------------------------------------------------------------- 9. one run folder, two callers

@pytest.fixture
def runs_home(tmp_path, monkeypatch, mnist_dir):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    for name in os.listdir(mnist_dir):
        if not name.startswith("."):
            (data / "mnist" / name).symlink_to(mnist_dir / name)
    monkeypatch.setenv("NPGAN_DATA", str(data))
    return data / "runs"


def test_every_is_bookkeeping_not_a_different_run(runs_home):
    _, first = bookruns.book_run("cgan", epochs=2, subset=128, every=1)
    folder = runs_home / "book-cgan-subset128"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    _, again = bookruns.book_run("cgan", epochs=2, subset=128, every=10)
    assert first.reused is False and again.reused is True
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_a_run_missing_checkpoints_is_retrained_once_with_all_of_them(runs_home):
    bookruns.book_run("gan", epochs=2, subset=128, every=10)          # keeps epoch 2 only
    _, more = bookruns.book_run("gan", epochs=2, subset=128, every=1)   # needs epoch 1 too
    _, back = bookruns.book_run("gan", epochs=2, subset=128, every=10)
    assert more.reused is False and back.reused is True
    folder = runs_home / "book-gan-subset128"
    assert {"epoch_001.npz", "epoch_002.npz"} <= {p.name for p in folder.iterdir()}


def test_a_replaced_run_stays_whole_until_the_new_one_is_finished(runs_home, monkeypatch):
    bookruns.book_run("gan", epochs=1, subset=128)
    folder = runs_home / "book-gan-subset128"
    old = snapshot_of(folder)
    seen = []
    real_train = bookruns.train

    def watching_train(*args, **kwargs):   # a reader, while the new run trains
        seen.append(snapshot_of(folder))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(bookruns, "train", watching_train)
    _, history = bookruns.book_run("gan", epochs=2, subset=128, replace=True)
    assert seen == [old] and history.reused is False
    assert bookruns.stored_facts("gan", subset=128)["epochs"] == 2
    assert sorted(p.name for p in runs_home.iterdir() if not p.name.endswith(".lock")) == ["book-gan-subset128"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    now = snapshot_of(folder)
    monkeypatch.setattr(bookruns, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bookruns.book_run("gan", epochs=3, subset=128, replace=True)
    assert snapshot_of(folder) == now
    assert sorted(p.name for p in runs_home.iterdir() if not p.name.endswith(".lock")) == ["book-gan-subset128"]


def test_a_second_process_waits_for_the_run_being_trained(runs_home, run_cli):
    folder = runs_home / "book-gan-subset128"
    with bookruns.run_lock(folder):
        proc = subprocess.Popen([sys.executable, "-m", "npgan", "book-runs", "--only", "gan",
                                 "--subset", "128", "--epochs", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NPGAN_DATA=str(runs_home.parent)))
        try:
            line = proc.stderr.readline()
            assert line == (f"book run {folder.name} is being trained by another process "
                            f"(pid {os.getpid()}); waiting for it to finish\n")
            time.sleep(0.5)
            assert proc.poll() is None and not folder.exists()
        except BaseException:
            proc.kill()
            raise
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and stderr == "", stderr
    assert "book run gan (mnist): trained in" in stdout
