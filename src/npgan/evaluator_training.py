"""How an evaluator is trained, checked and cached, whatever its network (chapter 21.5).

The book's evaluator (evaluator.py, a small CNN) and the retired one it replaced
(evaluator_mlp.py, an MLP) share one protocol, so that their numbers compare:

  * train[:50000] trains it, with random shifts of up to ±2 pixels, Adam, and a
    learning rate falling linearly from lr towards lr/20 over the epochs;
  * train[50000:60000] chooses the epoch (the best validation accuracy);
  * the 10,000 test images are read once, at the end, for the test accuracy only;
  * a fixed number of BLAS threads whatever the caller set: OpenBLAS's sums, and so
    the trained weights, depend on how many threads share a matrix product.

The cache: ``<data folder>/evaluator[-<dataset>]-<version>.npz``, read by the
evaluator's own ``load`` and trained the first time it is missing or damaged.

Pure NumPy: no SciPy, no PyTorch.
"""

import json
import os
import stat
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from . import data
from .files import atomic_write, check_writable, describe, kind_of
from .losses import softmax_cross_entropy
from .optim import Adam
from .threads import blas_threads

N_DIGITS = 10
IMAGE_SIDE = 28
TRAIN_SIZE = 50_000                 # train[:50000] trains an evaluator,
VALIDATION = slice(50_000, 60_000)  # train[50000:60000] selects its epoch
DATASETS = ("mnist", "fashion")     # an evaluator each, same recipe, cached apart


def load_images(dataset, split="train", subset=None, directory=None):
    """MNIST (digits) or Fashion-MNIST (Debian's dataset-fashion-mnist), in [−1, 1]."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    load = data.load_mnist if dataset == "mnist" else data.load_fashion_mnist
    return load(split, subset=subset, **({"directory": directory} if directory else {}))


def held_out(dataset="mnist", against="test"):
    """The real images the measures compare with. "test": the 10,000 test images
    (the book's figures). "validation": train[50000:60000], for tuning without
    the test set (experiments/scoreboard.py trains on train[:50000] then)."""
    if against == "test":
        return load_images(dataset, "test")[0]
    if against == "validation":
        return load_images(dataset, "train")[0][VALIDATION]
    raise ValueError(f"against must be 'test' or 'validation', got {against!r}")


def dataset_of(model):
    """The data set a model was trained on (a DCGAN's config says; the others: MNIST)."""
    return getattr(getattr(model, "config", None), "dataset", "mnist")


def cache_path(version, dataset="mnist"):
    """<data folder>/evaluator-<version>.npz (Fashion-MNIST's: evaluator-fashion-<version>.npz)."""
    prefix = "evaluator" if dataset == "mnist" else f"evaluator-{dataset}"
    return data.data_dir() / f"{prefix}-{version}.npz"


def random_shifts(images, max_shift, rng, background=0.0):
    """Each image (N, 784) moved by a random whole number of pixels, −max_shift…max_shift,
    in each direction; ``background`` fills the uncovered border."""
    n, s, m = len(images), IMAGE_SIDE, max_shift
    padded = np.full((n, s + 2 * m, s + 2 * m), background, dtype=images.dtype)
    padded[:, m:m + s, m:m + s] = images.reshape(n, s, s)
    dy, dx = rng.integers(0, 2 * m + 1, size=(2, n))
    rows = dy[:, None, None] + np.arange(s)[None, :, None]   # (N, 28, 1)
    cols = dx[:, None, None] + np.arange(s)[None, None, :]   # (N, 1, 28)
    return padded[np.arange(n)[:, None, None], rows, cols].reshape(n, s * s)


def fit(build, snapshot, recipe, dataset="mnist", threads=1, log=print, directory=None):
    """Train ``build(recipe, rng)`` (a Sequential that maps pixels in [0, 1], (B, 784),
    to 10 logits) by the protocol above. ``snapshot(net)`` turns the network into an
    evaluator (a copy, taking images in [−1, 1]) after each epoch. Returns the best
    epoch's evaluator and the facts of its training (epoch, accuracies, seconds, history)."""
    start_time = time.perf_counter()
    images, labels = load_images(dataset, "train", directory=directory)
    x_val, y_val = images[VALIDATION], labels[VALIDATION]   # in [−1, 1], for the evaluator
    x_train, y_train = images[:TRAIN_SIZE], labels[:TRAIN_SIZE]
    x_train += 1   # the network trains on pixels in [0, 1]
    x_train *= 0.5
    rng = np.random.default_rng(recipe["seed"])
    net = build(recipe, rng)
    opt = Adam(net.flat_params, net.flat_grads, lr=recipe["lr"], beta1=0.9, beta2=0.999)
    B, epochs = recipe["batch_size"], recipe["epochs"]
    n_batches = len(x_train) // B
    best, history = (-1.0, 0, None), []
    with blas_threads(threads):
        for epoch in range(1, epochs + 1):
            # the learning rate falls linearly, epoch by epoch, from lr towards lr/20
            opt.lr = recipe["lr"] * (1 - (epoch - 1) / epochs * 0.95)
            x_epoch = random_shifts(x_train, recipe["shift"], rng) if recipe["shift"] else x_train
            order = rng.permutation(len(x_train))
            loss_sum = 0.0
            for i in range(n_batches):
                idx = order[i * B:(i + 1) * B]
                logits = net.forward(x_epoch[idx])  # fancy indexing: a copy (layers work in place)
                loss, grad = softmax_cross_entropy(logits, y_train[idx])
                net.backward(grad, input_grad=False)
                opt.step()
                loss_sum += loss
            evaluator = snapshot(net)
            val_acc = evaluator.accuracy(x_val, y_val)
            history.append({"epoch": epoch, "loss": loss_sum / n_batches, "val_acc": val_acc})
            if val_acc > best[0]:
                best = (val_acc, epoch, evaluator)
            if log:
                log(f"  evaluator epoch {epoch}/{epochs}: loss {loss_sum / n_batches:.4f}, "
                    f"validation accuracy {val_acc:.4f}")
        val_acc, best_epoch, evaluator = best
        x_test, y_test = load_images(dataset, "test", directory=directory)  # in [−1, 1]
        test_acc = evaluator.accuracy(x_test, y_test)
    return evaluator, {"epoch": best_epoch, "validation_accuracy": val_acc, "test_accuracy": test_acc,
                       "seconds": time.perf_counter() - start_time, "history": history}


# ------------------------------------------------------------------ the cache file

def save_arrays(path, meta, arrays):
    """Write ``arrays`` and the JSON ``meta`` to ``path`` (.npz), through a temporary
    file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def read_arrays(path, names):
    """(meta, {name: array}) from a file written by save_arrays; ValueError if it is
    not one (also for an empty file, a FIFO or a folder, which are not even opened)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"it is {kind_of(mode)}, not a regular file")
        with open(path, "rb") as raw:
            if raw.read(4) != b"PK\x03\x04":   # an empty file: EOFError in np.load
                raise ValueError("it is empty" if raw.tell() == 0 else "it is not an .npz file")
            raw.seek(0)
            with np.load(raw, allow_pickle=False) as f:
                meta = json.loads(bytes(f["meta"]).decode())
                arrays = {name: f[name] for name in names}
        if not isinstance(meta, dict):
            raise ValueError("its meta is not a JSON object")
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a valid evaluator file ({err})") from None
    return meta, arrays


def check_recipe(path, meta, version, recipe):
    """ValueError unless ``meta`` says this version and recipe."""
    if meta.get("version") != version:
        raise ValueError(f"{path}: evaluator version {meta.get('version')!r}, expected {version!r}")
    if json.loads(json.dumps(recipe)) != meta.get("recipe"):
        raise ValueError(f"{path}: trained with another recipe ({meta.get('recipe')})")


def load_or_train(path, read, train, cache, log=None, name="MNIST", must_cache=False):
    """The evaluator cached in ``path`` (``read(path)``), or ``train()``-ed and cached
    there the first time. A damaged or outdated file is replaced. Kept in ``cache``
    (a dict) per process. Whether the file can be written is known before the
    minutes of training: with ``must_cache`` a cache that cannot be is a DataError
    then, otherwise the evaluator is kept for this session only. ``train=None``:
    FileNotFoundError instead of training."""
    path = Path(path)
    if path in cache:
        return cache[path]
    log = log or (lambda msg: print(msg, file=sys.stderr))
    evaluator = None
    if path.exists() and not path.is_file():   # never trained for minutes, then refused
        raise data.DataError(f"{path} is {kind_of(os.stat(path).st_mode)}, not a regular file: "
                             "remove it, and the evaluator will be trained and cached there again")
    if path.exists():
        try:
            evaluator = read(path)
        except ValueError as err:
            log(f"{err}; training a new one")
    if evaluator is None:
        if train is None:
            raise FileNotFoundError(f"{path}: no evaluator cached; call load_evaluator(train=True)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            check_writable(path)
        except OSError as err:
            if must_cache:
                raise data.DataError(f"cannot cache the evaluator: {describe(err)}; set NPGAN_DATA "
                                     "to a writable folder") from None
            log(f"the evaluator cannot be cached ({describe(err)}); it will be kept for this "
                "session only (set NPGAN_DATA to a writable folder)")
        log(f"training the {name} evaluator, once (a few minutes); it will be cached as {path}")
        evaluator = train()
        try:
            evaluator.save(path)
        except OSError as err:
            log(f"could not cache the evaluator in {path} ({err.strerror or err}); "
                "it is kept for this session only (set NPGAN_DATA to a writable folder)")
        m = evaluator.meta
        log(f"evaluator ready: epoch {m['epoch']}, validation accuracy {m['validation_accuracy']:.4f}, "
            f"test accuracy {m['test_accuracy']:.4f}, {m['seconds']:.0f} s")
    cache[path] = evaluator
    return evaluator
