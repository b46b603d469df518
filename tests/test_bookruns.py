"""npgan.bookruns: a book run is trained once and then read back as it was;
`book-runs` trains several side by side in their own processes."""

from pathlib import Path

import numpy as np
import pytest

from npgan import bookruns


@pytest.fixture
def runs_home(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("NPGAN_DATA", str(mnist_dir.parent))      # the real MNIST …
    monkeypatch.setattr(bookruns.checkpoint, "run_dir", lambda name: tmp_path / name)  # … our runs
    return tmp_path


def test_trained_once_then_reused(runs_home):
    model, history = bookruns.book_run("cgan", epochs=2, subset=128, every=1)
    assert history.reused is False and sorted(history.snapshots) == [0, 1, 2]
    folder = runs_home / "book-cgan-subset128"
    assert {p.name for p in folder.iterdir()} >= {"epoch_001.npz", "epoch_002.npz", "history.csv", "run.npz"}
    again, reread = bookruns.book_run("cgan", epochs=2, subset=128, every=1)
    assert reread.reused is True and reread.seconds == history.seconds
    np.testing.assert_array_equal(again.G.flat_params, model.G.flat_params)
    for epoch, grid in history.snapshots.items():
        np.testing.assert_array_equal(reread.snapshots[epoch], grid)
    assert len(reread.records) == len(history.records) == 4
    np.testing.assert_allclose(np.array(reread.records), np.array(history.records), rtol=1e-5)
    # each checkpoint knows the training time so far (21.6 plots FD against it)
    seconds = [bookruns.checkpoint.load(folder / f"epoch_{e:03d}.npz")[1]["train_seconds"] for e in (1, 2)]
    assert 0 < seconds[0] < seconds[1] == pytest.approx(history.seconds)


def test_another_recipe_or_a_damaged_run_is_trained_again(runs_home):
    bookruns.book_run("gan", epochs=1, subset=128)
    with pytest.raises(bookruns.RunExists, match=r"a finished GAN run \(1 epoch, seed 0, the first 128 "
                       r"images\); training 2 epochs would replace it; pass replace=True"):
        bookruns.book_run("gan", epochs=2, subset=128)   # more epochs: never replaced unasked (issue 30)
    _, history = bookruns.book_run("gan", epochs=2, subset=128, replace=True)
    assert history.reused is False
    (runs_home / "book-gan-subset128" / "run.npz").write_bytes(b"garbage")
    _, history = bookruns.book_run("gan", epochs=2, subset=128)
    assert history.reused is False
    _, history = bookruns.book_run("gan", epochs=2, subset=128)
    assert history.reused is True


def test_infogan_run_keeps_its_information_losses(runs_home):
    model, history = bookruns.book_run("infogan", epochs=1, subset=128)
    again, reread = bookruns.book_run("infogan", epochs=1, subset=128)
    assert reread.reused and len(again.info_log) == len(model.info_log) == 2
    np.testing.assert_allclose(again.info_log, model.info_log)


def test_side_by_side_in_processes(runs_home, monkeypatch, mnist_dir):
    """Two runs as two processes; the children see NPGAN_THREADS=1. (The children
    use the real run folder of NPGAN_DATA, so NPGAN_DATA points to a copy here.)"""
    import shutil
    data = runs_home / "data"
    shutil.copytree(mnist_dir, data / "mnist")
    monkeypatch.setenv("NPGAN_DATA", str(data))
    lines = []
    took = bookruns.train_side_by_side([("gan", "mnist"), ("infogan", "mnist", 20)], jobs=2,
                                       subset=128, epochs=1, log=lines.append)
    assert set(took) == {("gan", "mnist"), ("infogan", "mnist", 20)}
    assert sum("done" in line for line in lines) == 2
    assert any("book run infogan (mnist, 20 labels): done" in line for line in lines)
    for name in ("gan", "infogan-labels20"):   # a labelled InfoGAN: --labels reached the child
        assert (data / "runs" / f"book-{name}-subset128" / "run.npz").is_file()
    with pytest.raises(RuntimeError, match="book runs failed: nosuch \\(mnist\\)"):
        bookruns.train_side_by_side([("nosuch", "mnist"), ("gan", "mnist")], jobs=2,
                                    subset=128, epochs=1, log=lines.append)
    assert "book run gan (mnist): done" in lines[-1] or "book run gan (mnist): done" in lines[-2]


def test_an_interrupted_side_by_side_run_leaves_no_training_behind(monkeypatch):
    """Ctrl-C (or SIGTERM, which npgan's CLI turns into the same) while the runs train:
    every child process is stopped before the interrupt goes on."""
    started = []
    real_popen = bookruns.subprocess.Popen

    def popen(cmd, **kwargs):   # a child that would train for a long time
        proc = real_popen([bookruns.sys.executable, "-c", "import time; time.sleep(600)"], **kwargs)
        started.append(proc)
        return proc

    def interrupt(_):
        raise KeyboardInterrupt

    monkeypatch.setattr(bookruns.subprocess, "Popen", popen)
    monkeypatch.setattr(bookruns.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bookruns.train_side_by_side([("gan", "mnist"), ("cgan", "mnist")], jobs=2, log=lambda _: None)
    assert len(started) == 2 and all(proc.poll() is not None for proc in started)


def test_labelled_infogan_run_has_a_folder_of_its_own(runs_home):
    model, history = bookruns.book_run("infogan", epochs=1, subset=640, n_labels=20)
    assert model.config.n_labels == 20 and len(model.label_log) == 10
    assert (runs_home / "book-infogan-labels20-subset640" / "run.npz").is_file()
    again, reread = bookruns.book_run("infogan", epochs=1, subset=640, n_labels=20)
    assert reread.reused and again.config == model.config
    _, other = bookruns.book_run("infogan", epochs=1, subset=640)      # the unsupervised one apart
    assert other.reused is False and (runs_home / "book-infogan-subset640" / "run.npz").is_file()
    with pytest.raises(ValueError, match="only the InfoGAN"):
        bookruns.book_run("gan", epochs=1, subset=128, n_labels=10)


def test_checkpoint_spacing_of_the_book_runs():
    """21.6 plots the MNIST DCGAN's FD at every epoch and 21.5 the GAN's every 2; the
    Fashion-MNIST DCGAN (experiments/dcgan_fashion.py), which nothing plots, keeps every 10."""
    assert bookruns.checkpoint_every("dcgan") == 1 and bookruns.checkpoint_every("gan") == 2
    assert bookruns.checkpoint_every("dcgan", "fashion") == 10 and bookruns.checkpoint_every("cgan") == 10


def test_the_book_trains_nothing_on_fashion_mnist():
    """Issue 29 (a cold `make book` within 30 minutes on 2 cores): `make runs` trains the
    MNIST runs and evaluator only; 21.6's Fashion-MNIST exercise reads committed files."""
    assert {run[1] for run in bookruns.BOOK_RUNS} == {"mnist"}
    assert ("evaluator", "mnist") in bookruns.BOOK_RUNS and ("dcgan", "mnist") in bookruns.BOOK_RUNS
    experiments = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("dcgan_fashion.csv", "dcgan_fashion_snapshots.csv"):
        assert (experiments / name).is_file(), f"experiments/{name} is missing: run experiments/dcgan_fashion.py"
