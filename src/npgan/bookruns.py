"""The book's training runs: trained once, shown by every page that needs them.

``make book`` trains the chapter's models side by side before it builds the
pages (``python -m npgan book-runs``: one process per model, one BLAS thread
each, as many at once as the machine has cores — on a 2-core machine one
training per core is the fastest way, see threads.py). A notebook then calls
``book_run``, which finds the finished run and shows it. A learner who opens
the notebook on a fresh machine has no such run: the same call trains right
there in the cell, with its progress line.

A run lives in $NPGAN_DATA/runs/book-<model>[-<dataset>][-subset<N>]/:
    epoch_NNN.npz   checkpoints (every ``every`` epochs and the last)
    history.csv     the per-step losses
    run.npz         the sample grid after every epoch, extra logs (InfoGAN's
                    information losses) and run.json's facts, written last: a
                    run without it is unfinished and is trained again.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from . import checkpoint, data, models
from .files import atomic_write
from .train import HISTORY_COLUMNS, History, train

DATASETS = {"mnist": data.load_mnist, "fashion": data.load_fashion_mnist}


def run_folder(name, dataset="mnist", subset=None, n_labels=0):
    suffix = ("" if dataset == "mnist" else f"-{dataset}") + (f"-labels{n_labels}" if n_labels else "") \
        + (f"-subset{subset}" if subset else "")
    return checkpoint.run_dir(f"book-{name}{suffix}")


def _facts(name, config, epochs, seed, dataset, subset, every):
    return {"model": name, "config": json.loads(config.to_json()), "epochs": epochs,
            "seed": seed, "dataset": dataset, "subset": subset, "every": every}


def book_run(name, epochs=None, subset=None, seed=0, dataset="mnist", every=10, notebook=False,
             n_labels=0):
    """(model, history) of the book's run of model ``name`` with the book's recipe.

    Reuses the finished run in ``run_folder(...)`` if it was made with the same
    recipe, epochs, seed, data and subset; otherwise trains it now (a snapshot
    after every epoch, a checkpoint every ``every`` epochs and after the last)
    and saves it. ``notebook=True``: while training, a progress line in the
    notebook (npgan.notebook_progress). The history says which happened:
    ``history.reused`` is True for a run read back from disk. ``n_labels``: InfoGAN
    only, the semi-supervised one with that many labelled images (semisup.py), in a
    run folder of its own (book-infogan-labels<N>)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    config = models.book_config(name)
    if hasattr(config, "dataset"):   # a DCGAN keeps its data set in its config: scored against it
        config.dataset = dataset
    if n_labels:
        if not hasattr(config, "n_labels"):
            raise ValueError(f"n_labels: only the InfoGAN learns from labelled images, not {name!r}")
        config.n_labels = n_labels
        config.validate()
    epochs = models.BOOK_EPOCHS[name] if epochs is None else epochs
    folder = run_folder(name, dataset, subset, n_labels)
    facts = _facts(name, config, epochs, seed, dataset, subset, every)
    found = _load_finished(folder, facts, epochs)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (*folder.glob("epoch_*.npz"), folder / "run.npz"):
        stale.unlink(missing_ok=True)
    images, labels = DATASETS[dataset]("train", subset=subset)
    model = models.build(config, seed=seed)
    if n_labels:                     # its labelled images, chosen by the seed
        model.use_labels(images, labels, seed=seed)
    callbacks = [checkpoint.epoch_saver(model, folder, epochs, every, seed)]
    if notebook:
        from .train import notebook_progress

        callbacks.append(notebook_progress(epochs, len(images) // config.batch_size))
    history = train(model, images, labels if model.conditional else None, epochs=epochs,
                    seed=seed, snapshot_epochs=range(epochs + 1), progress=False,
                    on_epoch_end=callbacks)
    history.reused = False
    arrays = {f"snapshot_{e:03d}": grid for e, grid in history.snapshots.items()}
    if hasattr(model, "info_log"):
        arrays["info_log"] = np.array(model.info_log, dtype=np.float64).reshape(-1, 2)
    facts["seconds"] = history.seconds
    arrays["facts"] = np.frombuffer(json.dumps(facts).encode(), dtype=np.uint8)
    with atomic_write(folder / "run.npz") as f:
        np.savez(f, **arrays)
    return model, history


def stored_facts(name, dataset="mnist", subset=None):
    """The facts of the finished book run of ``name`` (its recipe, epochs, seed and
    training seconds), or None if there is none; nothing is trained."""
    try:
        with np.load(run_folder(name, dataset, subset) / "run.npz", allow_pickle=False) as stored:
            return json.loads(bytes(stored["facts"]).decode())
    except (OSError, ValueError, KeyError):
        return None


def _same_run(saved, facts):
    """Were the stored run's facts these? Configs are compared as configs, so that a
    field added to the config later, with the value runs had before it (e.g.
    ema_decay 0 in files without it), still matches."""
    if any(saved.get(k) != v for k, v in facts.items() if k != "config"):
        return False
    family = models.family(facts["model"]).config_class
    try:
        return family.from_json(json.dumps(saved.get("config"))) == family.from_json(json.dumps(facts["config"]))
    except (TypeError, ValueError):
        return False


def _load_finished(folder, facts, epochs):
    path = folder / "run.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            saved = json.loads(bytes(stored["facts"]).decode())
            if not _same_run(saved, facts):
                return None
            snapshots = {int(k.split("_")[1]): stored[k] for k in stored.files
                         if k.startswith("snapshot_")}
            info_log = stored["info_log"] if "info_log" in stored.files else None
        model, _ = checkpoint.load(folder / f"epoch_{epochs:03d}.npz")
        records = _read_history(folder / "history.csv")
    except (OSError, ValueError, KeyError, checkpoint.CheckpointError):
        return None   # damaged or from another version: train again
    if info_log is not None:
        model.info_log = [tuple(row) for row in info_log]
    history = History(records=records, snapshots=snapshots, seconds=saved["seconds"])
    history.reused = True
    return model, history


def _read_history(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if tuple(header) != HISTORY_COLUMNS:
            raise ValueError(f"{path}: unexpected columns {header}")
        return [(int(e), int(i), *map(float, rest)) for e, i, *rest in
                (line.strip().split(",") for line in f if line.strip())]


# ------------------------------------------------------------------ side by side

# What `make book` trains before the pages: (model, dataset), in the order they start
# (the longest first, so that the two cores finish at about the same time); "evaluator"
# is the Fashion-MNIST evaluator of 21.4, trained beside the runs instead of in its notebook.
BOOK_RUNS = (("gan", "mnist"), ("cgan", "mnist"), ("dcgan", "mnist"), ("dcgan", "fashion"),
             ("evaluator", "fashion"), ("infogan", "mnist"))


def train_side_by_side(runs=BOOK_RUNS, jobs=None, subset=None, epochs=None, log=print):
    """Train every run in ``runs`` in its own process with one BLAS thread,
    ``jobs`` at a time (default: the number of cores); ``subset`` and ``epochs``
    as in book_run (default: all images, the book's epochs). Returns {run: seconds};
    raises RuntimeError naming the runs that failed."""
    jobs = jobs or os.cpu_count() or 1
    env = dict(os.environ, NPGAN_THREADS="1")
    waiting, running, took, failed = list(runs), {}, {}, []
    try:
        _run_all(waiting, running, took, failed, jobs, env, subset, epochs, log)
    finally:   # interrupted (Ctrl-C, SIGTERM): no training is left running on its own
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.wait()
    if failed:
        raise RuntimeError("book runs failed: " + ", ".join(f"{n} ({d})" for n, d in failed))
    return took


def _run_all(waiting, running, took, failed, jobs, env, subset, epochs, log):
    while waiting or running:
        while waiting and len(running) < jobs:
            name, dataset = run = waiting.pop(0)
            cmd = [sys.executable, "-m", "npgan", "book-runs", "--only", name, "--dataset", dataset]
            cmd += ["--subset", str(subset)] if subset else []
            cmd += ["--epochs", str(epochs)] if epochs else []
            running[run] = (subprocess.Popen(cmd, env=env), time.perf_counter())
            log(f"book run {name} ({dataset}): started")
        for run, (proc, start) in list(running.items()):
            if proc.poll() is not None:
                del running[run]
                took[run] = time.perf_counter() - start
                if proc.returncode:
                    failed.append(run)
                log(f"book run {run[0]} ({run[1]}): "
                    f"{'FAILED' if proc.returncode else 'done'} after {took[run]:.0f} s")
        time.sleep(0.5)
