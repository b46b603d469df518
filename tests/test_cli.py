"""The command line, run as a user runs it: `python -m npgan ...` in a subprocess
(with this interpreter, the venv's). Wrong use → exit code 2 and exactly one
line on stderr, never a traceback."""

import os

import numpy as np
import pytest

from npgan import GANConfig, build, checkpoint
from npgan.cli import make_parser


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    small = dict(latent_dim=8, g_hidden=(16, 16), d_hidden=(16, 16))
    paths = {"gan": checkpoint.save(build(GANConfig(**small)), folder / "gan.npz"),
             "cgan": checkpoint.save(build(GANConfig(n_classes=10, **small)), folder / "cgan.npz")}
    (folder / "garbage.npz").write_bytes(b"definitely not a zip file\n")
    (folder / "empty.npz").write_bytes(b"")
    good = paths["gan"].read_bytes()
    (folder / "truncated.npz").write_bytes(good[:len(good) // 2])
    paths.update({name: folder / f"{name}.npz" for name in ("garbage", "empty", "truncated")})
    return paths


def assert_usage_error(result, *needles):
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# (case, args, expected words); {gan} etc. are checkpoint paths, {tmp} the test's folder
ERROR_CASES = [
    ("unknown model", ["train", "--model", "vae", "--out", "{tmp}/o"], ["invalid choice: 'vae'"]),
    ("no command", [], ["required"]),
    ("unknown command", ["dance"], ["invalid choice"]),
    ("train without --out", ["train"], ["--out"]),
    ("bad snapshot epochs", ["train", "--out", "{tmp}/o", "--snapshot-epochs", "a,b"], ["epochs like"]),
    ("zero epochs", ["train", "--out", "{tmp}/o", "--epochs", "0"], ["--epochs"]),
    ("zero batch", ["train", "--out", "{tmp}/o", "--batch-size", "0"], ["--batch-size"]),
    ("zero lr", ["train", "--out", "{tmp}/o", "--lr", "0"], ["--lr must be a positive number"]),
    ("nan lr", ["train", "--out", "{tmp}/o", "--lr", "nan"], ["--lr must be a positive number"]),
    ("subset 0", ["train", "--out", "{tmp}/o", "--subset", "0"], ["--subset"]),
    ("subset too big", ["train", "--out", "{tmp}/o", "--subset", "70000"], ["--subset", "60000"]),
    ("subset below a batch", ["train", "--out", "{tmp}/o", "--subset", "10"], ["batch size (64)"]),
    ("train out in /proc", ["train", "--out", "/proc/npgan-test-out"], ["cannot write to /proc/npgan-test-out"]),
    ("train out below a file", ["train", "--out", "{tmp}/a-file/run"], ["cannot write to"]),
    ("label 10", ["sample", "--checkpoint", "{cgan}", "--label", "10", "--out", "{tmp}/s.npy"],
     ["--label must be a digit 0–9, got 10"]),
    ("label -1", ["sample", "--checkpoint", "{cgan}", "--label", "-1", "--out", "{tmp}/s.npy"],
     ["--label must be a digit"]),
    ("label for a GAN", ["sample", "--checkpoint", "{gan}", "--label", "3", "--out", "{tmp}/s.npy"],
     ["--label needs a CGAN checkpoint; this one is a GAN"]),
    ("missing checkpoint", ["sample", "--checkpoint", "{tmp}/nope.npz", "--out", "{tmp}/s.npy"],
     ["no such checkpoint file"]),
    ("garbage checkpoint", ["sample", "--checkpoint", "{garbage}", "--out", "{tmp}/s.npy"],
     ["not a valid npgan checkpoint"]),
    ("empty checkpoint", ["sample", "--checkpoint", "{empty}", "--out", "{tmp}/s.npy"],
     ["not a valid npgan checkpoint"]),
    ("truncated checkpoint", ["sample", "--checkpoint", "{truncated}", "--out", "{tmp}/s.npy"],
     ["not a valid npgan checkpoint"]),
    ("n 0", ["sample", "--checkpoint", "{gan}", "--n", "0", "--out", "{tmp}/s.npy"], ["--n"]),
    ("sample out in /proc", ["sample", "--checkpoint", "{gan}", "--out", "/proc/npgan-test.npy"],
     ["cannot write /proc/npgan-test.npy"]),
    ("sample out in /sys", ["sample", "--checkpoint", "{gan}", "--out", "/sys/npgan-test.npy"],
     ["cannot write /sys/npgan-test.npy"]),
    ("sample out folder missing", ["sample", "--checkpoint", "{gan}", "--out", "{tmp}/no/s.npy"],
     ["does not exist"]),
    ("sample out is a folder", ["sample", "--checkpoint", "{gan}", "--out", "{tmp}"], ["is a folder"]),
]


@pytest.mark.parametrize("case", [c[0] for c in ERROR_CASES])
def test_wrong_use_is_one_line_and_exit_code_2(run_cli, checkpoints, tmp_path, case):
    _, args, needles = next(c for c in ERROR_CASES if c[0] == case)
    (tmp_path / "a-file").write_text("x")
    names = {k: str(v) for k, v in checkpoints.items()}
    args = [a.format(tmp=tmp_path, **names) for a in args]
    result = run_cli(*args)
    assert_usage_error(result, *needles)
    assert result.stdout == ""
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "a-file"]
    assert leftovers == [], leftovers  # nothing half-written (no *.part, no s.npy)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_sample_into_a_read_only_folder(run_cli, checkpoints, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_cli("sample", "--checkpoint", checkpoints["gan"], "--out", folder / "s.npy")
    finally:
        folder.chmod(0o755)
    assert_usage_error(result, "cannot write")
    assert list(folder.iterdir()) == []


def subcommands():
    parser = make_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(action.choices)


@pytest.mark.parametrize("command", [[]] + [[name] for name in subcommands()],
                         ids=lambda c: " ".join(c) or "top")
def test_help_exits_0(run_cli, command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: ") and result.stderr == ""


def test_subcommands_exist():
    assert {"fetch-data", "train", "sample"} <= set(subcommands())


def test_sample_from_a_checkpoint(run_cli, checkpoints, tmp_path):
    out = tmp_path / "s.npy"
    result = run_cli("sample", "--checkpoint", checkpoints["gan"], "--n", "7", "--seed", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    images = np.load(out)
    assert images.dtype == np.uint8 and images.shape == (7, 28, 28)
    model, _ = checkpoint.load(checkpoints["gan"])
    expected = model.generate(model.sample_noise(7, np.random.default_rng(3)))
    np.testing.assert_array_equal(images.reshape(7, 784),
                                  np.clip(np.rint((expected + 1) * 127.5), 0, 255).astype(np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]


def test_fetch_data_with_a_verified_cache(run_cli, mnist_dir):
    result = run_cli("--data-dir", mnist_dir.parent, "fetch-data", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"MNIST is ready in {mnist_dir}" in result.stdout


def test_train_then_sample_on_real_mnist(run_cli, train_one_epoch, tmp_path):
    """One short real run: CGAN, 1 epoch on 6,000 images (93 steps of 64)."""
    run = train_one_epoch("cgan", subset=6000, steps=93)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.npz", "epoch_000.png", "epoch_001.png", "history.csv"]
    for png in ("epoch_000.png", "epoch_001.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (run / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,iteration,d_loss,g_loss,d_real,d_fake" and len(lines) == 94
    model, meta = checkpoint.load(run / "checkpoint.npz")
    assert model.conditional and meta["epoch"] == 1 and meta["seed"] == 0
    assert model.opt_d.t == 93

    out = tmp_path / "s.npy"
    result = run_cli("sample", "--checkpoint", run / "checkpoint.npz", "--n", "100", "--label", "3",
                     "--seed", "0", "--out", out)
    assert result.returncode == 0, result.stderr
    images = np.load(out)
    assert images.dtype == np.uint8 and images.shape == (100, 28, 28)
    assert images.std() > 10  # not a constant image
    # the same command again gives the same file
    again = tmp_path / "s2.npy"
    run_cli("sample", "--checkpoint", run / "checkpoint.npz", "--n", "100", "--label", "3",
            "--seed", "0", "--out", again)
    assert np.array_equal(np.load(again), images)


def test_a_diverging_run_is_one_line(run_cli, mnist_dir, tmp_path):
    result = run_cli("--data-dir", mnist_dir.parent, "train", "--lr", "1e30", "--epochs", "1",
                     "--subset", "640", "--out", tmp_path / "run", "--quiet")
    assert_usage_error(result, "training diverged at iteration", "Lower the learning rates")

