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
Beside it: book-<…>.lock, held by the process that trains the run (runfolder.py).

A finished run is never deleted to make room for other settings (issue 30: a
learner's `book-runs --only gan --epochs 5` had replaced the book's 70-epoch run):
a run of other epochs or another seed is refused (RunExists) unless replace=True
(--replace). Its folder keeps its name, which the notebooks use; a learner's own
settings belong in `python -m npgan train --out DIR`. What does replace a run
without asking: a run of a recipe the code has since changed (whatever its epochs: the
book's run of an earlier edition), an unfinished or damaged run, and one that lacks
checkpoints a caller needs (``every``), retrained with all of them.
"""

import json
import math
import numbers
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from . import checkpoint, data, models
from .files import atomic_write
from .runfolder import new_work_folder, run_lock, swap_in
from .train import HISTORY_COLUMNS, History, train

DATASETS = {"mnist": data.load_mnist, "fashion": data.load_fashion_mnist}
TRAIN_IMAGES = 60_000   # in the training split of MNIST and of Fashion-MNIST


class RunExists(ValueError):
    """A finished run with other settings is in the run folder: it is never
    replaced unless the caller says so (replace=True, --replace). ``what`` is the
    sentence without the advice, for the command line to add its own."""

    def __init__(self, what, model):
        super().__init__(f"{what}; pass replace=True to replace it, or try your settings with "
                         "npgan.train and a folder of your own")
        self.what, self.model = what, model


def run_folder(name, dataset="mnist", subset=None, n_labels=0):
    suffix = ("" if dataset == "mnist" else f"-{dataset}") + (f"-labels{n_labels}" if n_labels else "") \
        + (f"-subset{subset}" if subset else "")
    return checkpoint.run_dir(f"book-{name}{suffix}")


def _facts(name, config, epochs, seed, dataset, subset, every):
    return {"model": name, "config": json.loads(config.to_json()), "epochs": epochs,
            "seed": seed, "dataset": dataset, "subset": subset, "every": every}


# Checkpoints every 10 epochs, but every 2 for the WGAN and the GAN: 21.5 follows the
# critic's W1 estimate (and the GAN's D loss) against FD over the checkpoints, and 6 points
# would say little; every epoch for the DCGAN, whose FD 21.6 plots against training time
# beside the GAN's (a DCGAN checkpoint is 3.6 MB, a GAN's 15 MB); the DCGAN on Fashion-MNIST
# (experiments/dcgan_fashion.py), which nothing plots so, keeps every 10, as every run not listed.
CHECKPOINT_EVERY = {("wgan", "mnist"): 2, ("gan", "mnist"): 2, ("dcgan", "mnist"): 1}


def checkpoint_every(name, dataset="mnist"):
    """How often the book's run of ``name`` on ``dataset`` keeps a checkpoint (epochs)."""
    return CHECKPOINT_EVERY.get((name, dataset), 10)


def _whole(value, what, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{what} must be a whole number ≥ {low}, got {value!r}")
    return int(value)


def check_settings(name, epochs=None, subset=None, seed=0, dataset="mnist", every=10, n_labels=0):
    """(config, epochs) of the book's run of ``name`` with these settings, or a
    ValueError naming the argument that is wrong; nothing is read or written."""
    config = models.book_config(name)   # ValueError for an unknown model
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    if hasattr(config, "dataset"):   # a DCGAN keeps its data set in its config: scored against it
        config.dataset = dataset
    if n_labels:   # InfoGAN only: the semi-supervised one with that many labelled images
        if not hasattr(config, "n_labels"):
            raise ValueError(f"n_labels: only the InfoGAN learns from labelled images, not {name!r}")
        config.n_labels = _whole(n_labels, "n_labels", 0)
        config.validate()
    epochs = models.BOOK_EPOCHS[name] if epochs is None else _whole(epochs, "epochs", 1)
    _whole(seed, "seed", 0)
    _whole(every, "every", 1)
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, numbers.Integral)
                               or not config.batch_size <= subset <= TRAIN_IMAGES):
        raise ValueError(f"subset must be between the batch size ({config.batch_size}) and "
                         f"{TRAIN_IMAGES}, got {subset}")
    return config, epochs


def _settings(facts):
    return {k: facts.get(k) for k in ("model", "epochs", "seed", "dataset", "subset")}


def _epochs(n):
    return f"{n} epoch{'' if n == 1 else 's'}"


def _described(facts):
    subset = facts.get("subset")
    return (f"{_epochs(facts.get('epochs'))}, seed {facts.get('seed')}"
            + (f", the first {subset} images" if subset else ""))


def check_replace(name, epochs=None, subset=None, seed=0, dataset="mnist", every=10, replace=False,
                  n_labels=0):
    """RunExists if the run folder holds a finished run of other settings (epochs,
    seed) that book_run would replace; ValueError for a wrong argument."""
    config, epochs = check_settings(name, epochs, subset, seed, dataset, every, n_labels)
    folder = run_folder(name, dataset, subset, n_labels)
    _refuse_replacing(folder, _stored(folder), _facts(name, config, epochs, seed, dataset, subset, every),
                      replace)


def _refuse_replacing(folder, stored, facts, replace):
    """check_replace's verdict on the run folder's stored facts (None: no finished run)."""
    if stored is None or replace or _settings(stored) == _settings(facts) or _older_recipe(stored, facts):
        return
    name, epochs, seed, subset = facts["model"], facts["epochs"], facts["seed"], facts["subset"]
    whose = "the book's" if (stored.get("epochs") == models.BOOK_EPOCHS[name] and not subset
                             and stored.get("seed") == 0) else "a"
    raise RunExists(f"{folder} holds {whose} finished "
                    f"{name.upper()} run ({_described(stored)}); training {_epochs(epochs)}"
                    + (f" with seed {seed}" if seed != stored.get("seed") else "")
                    + " would replace it", name)


def book_run(name, epochs=None, subset=None, seed=0, dataset="mnist", every=None, notebook=False,
             replace=False, log=None, n_labels=0):
    """(model, history) of the book's run of model ``name`` with the book's recipe.

    Reuses the finished run in ``run_folder(...)`` if it was made with the same
    recipe, epochs, seed, data and subset, and keeps a checkpoint every ``every``
    epochs (a run kept more often serves too: ``every`` does not change the
    weights); otherwise trains it now (a snapshot after every epoch, a checkpoint
    every ``every`` epochs and after the last) and saves it. A finished run of other
    epochs or another seed is never replaced unless ``replace=True`` (RunExists).

    One process at a time trains a run folder: a second one waits, saying so once
    through ``log`` (default: stderr). A new run is trained in a folder of its own
    beside it and takes the run folder's place only when finished, so that a reader
    sees the old run or the new one, never half of each. ``notebook=True``: while
    training, a progress line in the notebook (npgan.notebook_progress). The history
    says which happened: ``history.reused`` is True for a run read back from disk.
    ``every`` defaults to CHECKPOINT_EVERY's (checkpoint_every), else 10. ``n_labels``: InfoGAN only, the
    semi-supervised one with that many labelled images (semisup.py), in a run folder of
    its own (book-infogan-labels<N>)."""
    every = checkpoint_every(name, dataset) if every is None else every
    config, epochs = check_settings(name, epochs, subset, seed, dataset, every, n_labels)
    folder = run_folder(name, dataset, subset, n_labels)
    facts = _facts(name, config, epochs, seed, dataset, subset, every)
    with run_lock(folder, log):
        stored = _stored(folder)
        _refuse_replacing(folder, stored, facts, replace)
        if stored is not None and _settings(stored) == _settings(facts):
            found = _load_finished(folder, facts, epochs, every)
            if found is not None:
                return found
            if isinstance(stored.get("every"), int) and stored["every"] >= 1:
                every = math.gcd(every, stored["every"])   # keep what the other caller needed too
                facts["every"] = every
        return _train_in_place_of(folder, config, epochs, seed, dataset, subset, every, facts,
                                  notebook)


def _train_in_place_of(folder, config, epochs, seed, dataset, subset, every, facts, notebook):
    """Train the run in a new folder beside ``folder`` and then swap it in."""
    work = new_work_folder(folder)
    try:
        images, labels = DATASETS[dataset]("train", subset=subset)
        model = models.build(config, seed=seed)
        if getattr(config, "n_labels", 0):   # its labelled images, chosen by the seed
            model.use_labels(images, labels, seed=seed)
        callbacks = [checkpoint.epoch_saver(model, work, epochs, every, seed)]
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
        with atomic_write(work / "run.npz") as f:
            np.savez(f, **arrays)
        swap_in(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)   # the old run after a swap, or the unfinished one
    return model, history


def _stored(folder):
    """The facts of the finished run in ``folder``, or None."""
    try:
        with np.load(folder / "run.npz", allow_pickle=False) as stored:
            facts = json.loads(bytes(stored["facts"]).decode())
        return facts if isinstance(facts, dict) else None
    except (OSError, ValueError, KeyError, RecursionError):
        return None


def stored_facts(name, dataset="mnist", subset=None):
    """The facts of the finished book run of ``name`` (its recipe, epochs, seed and
    training seconds), or None if there is none; nothing is trained."""
    return _stored(run_folder(name, dataset, subset))


def _same_config(saved, facts):
    """Was the stored run trained with this config? Compared as configs, so that a field
    added to the config later, with the value runs had before it (e.g. ema_decay 0 in
    files without it), still matches."""
    family = models.family(facts["model"]).config_class
    try:
        return family.from_json(json.dumps(saved.get("config"))) == family.from_json(json.dumps(facts["config"]))
    except (TypeError, ValueError, RecursionError):
        return False


def _same_run(saved, facts):
    """Were the stored run's facts these (``every`` aside: it does not change the weights)?"""
    return (all(saved.get(k) == v for k, v in facts.items() if k not in ("config", "every"))
            and _same_config(saved, facts))


def _older_recipe(saved, facts):
    """Was the stored run trained with a recipe the code has since changed? Only the
    book's recipe trains into a run folder, so such a run is the book's run of an earlier
    edition (e.g. the WGAN's 60 epochs at n_critic 5): it is replaced like a damaged run,
    whatever its epochs, without asking."""
    return saved.get("model") == facts["model"] and not _same_config(saved, facts)


def _load_finished(folder, facts, epochs, every):
    """The finished run in ``folder`` if it is this run and holds a checkpoint every
    ``every`` epochs, else None."""
    path = folder / "run.npz"
    if not path.is_file():
        return None
    wanted = {*range(every, epochs + 1, every), epochs}
    if any(not (folder / f"epoch_{e:03d}.npz").is_file() for e in wanted):
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
    except (OSError, ValueError, KeyError, RecursionError, checkpoint.CheckpointError):
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
# is a data set's evaluator, trained beside the runs instead of in a notebook (the runs do
# not need it, the notebooks do); a third number is an InfoGAN's labelled images (21.7).
# Nothing on Fashion-MNIST (issue 29: a cold build within 30 minutes on 2 cores): 21.6's
# exercise 8 reads its answer from experiments/dcgan_fashion*.csv; book_run("dcgan",
# dataset="fashion") and the Fashion-MNIST evaluator still train on request.
BOOK_RUNS = (("gan", "mnist"), ("cgan", "mnist"), ("wgan", "mnist"), ("dcgan", "mnist"),
             ("evaluator", "mnist"), ("infogan", "mnist"), ("infogan", "mnist", 100))


def train_side_by_side(runs=BOOK_RUNS, jobs=None, subset=None, epochs=None, log=print, replace=False):
    """Train every run in ``runs`` in its own process with one BLAS thread,
    ``jobs`` at a time (default: the number of cores); ``subset``, ``epochs`` and
    ``replace`` as in book_run (default: all images, the book's epochs). Every run's
    settings are checked here, before any process starts (ValueError, RunExists).
    Returns {run: seconds}; raises RuntimeError naming the runs that failed."""
    jobs = (os.cpu_count() or 1) if jobs is None else _whole(jobs, "jobs", 1)
    for name, dataset, *labels in runs:
        if name in models.names():   # "evaluator", or a name a test made up, is the child's to report
            check_replace(name, epochs, subset, 0, dataset, replace=replace, n_labels=sum(labels))
    env = dict(os.environ, NPGAN_THREADS="1")
    waiting, running, took, failed = list(runs), {}, {}, []
    try:
        _run_all(waiting, running, took, failed, jobs, env, subset, epochs, log, replace)
    finally:   # interrupted (Ctrl-C, SIGTERM): no training is left running on its own
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.wait()
    if failed:
        raise RuntimeError("book runs failed: " + ", ".join(described_run(run) for run in failed))
    return took


def described_run(run):
    name, dataset, *labels = run
    return f"{name} ({dataset}{''.join(f', {n} labels' for n in labels)})"


def _run_all(waiting, running, took, failed, jobs, env, subset, epochs, log, replace):
    while waiting or running:
        while waiting and len(running) < jobs:
            name, dataset, *labels = run = waiting.pop(0)
            cmd = [sys.executable, "-m", "npgan", "book-runs", "--only", name, "--dataset", dataset]
            cmd += [arg for n in labels for arg in ("--labels", str(n))]
            cmd += ["--subset", str(subset)] if subset else []
            cmd += ["--epochs", str(epochs)] if epochs else []
            cmd += ["--replace"] if replace else []
            running[run] = (subprocess.Popen(cmd, env=env), time.perf_counter())
            log(f"book run {described_run(run)}: started")
        for run, (proc, start) in list(running.items()):
            if proc.poll() is not None:
                del running[run]
                took[run] = time.perf_counter() - start
                if proc.returncode:
                    failed.append(run)
                log(f"book run {described_run(run)}: "
                    f"{'FAILED' if proc.returncode else 'done'} after {took[run]:.0f} s")
        time.sleep(0.5)
