"""The evaluator (chapter 21.5): the classifier that scores generated samples.

An MNIST classifier trained by npgan itself (784 → 800 → 800 → 10, ReLU,
dropout 0.3, Adam, random shifts of ±2 pixels; about 98.8 % test accuracy),
cached in the data folder as ``evaluator-<version>.npz`` and trained
automatically the first time it is needed; Fashion-MNIST has its own, with the
same recipe. Its predictions give the digit shares and the label accuracy; its
last hidden layer (800 numbers per image) is the feature space of the Fréchet
distance (both measured in metrics.py).

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
from .layers import Dropout, Linear, ReLU, Sequential
from .losses import softmax_cross_entropy
from .threads import blas_threads
from .optim import Adam

N_DIGITS = 10
IMAGE_SIDE = 28

# The evaluator's recipe. Changing anything here changes its weights, so the
# version (part of the cache file's name) must change too.
EVALUATOR_VERSION = "2"
EVALUATOR_THREADS = 2   # BLAS threads while it trains, on any machine (see train_evaluator)
EVALUATOR_RECIPE = {
    "hidden": (800, 800),    # 784 → 800 → 800 → 10
    "input_dropout": 0.0,
    "dropout": 0.3,          # after each hidden ReLU
    "epochs": 15,
    "batch_size": 128,
    "lr": 1e-3,              # Adam (β1 0.9), lr·(1 − 0.95·(epoch − 1)/epochs) in each epoch
    "shift": 2,              # augmentation: random shifts of up to ±2 pixels
    "seed": 0,
}
TRAIN_SIZE = 50_000          # train[:50000] trains the evaluator,
VALIDATION = slice(50_000, 60_000)  # train[50000:60000] selects its epoch


class Evaluator:
    """An MNIST classifier, inference only: x (N, 784) in [−1, 1] →
    hidden features (N, 800) and logits (N, 10).

    Weights: ``weights`` = [(W1, b1), (W2, b2), (W3, b3)], float32.
    """

    def __init__(self, weights, meta=None):
        self.weights = [(np.ascontiguousarray(W, np.float32), np.ascontiguousarray(b, np.float32))
                        for W, b in weights]
        self.meta = dict(meta or {})

    @property
    def n_features(self):
        return self.weights[-1][0].shape[0]

    def forward(self, x, batch_size=2000):
        """(features (N, H), logits (N, 10)), both float32, computed batch by batch."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"expected images of shape (N, 784) in [-1, 1], got {x.shape}")
        n = x.shape[0]
        (W1, b1), (W2, b2), (W3, b3) = self.weights
        features = np.empty((n, W2.shape[1]), np.float32)
        logits = np.empty((n, W3.shape[1]), np.float32)
        hidden = np.empty((min(batch_size, n), W1.shape[1]), np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            xb = x[start:stop].astype(np.float32, copy=False)
            h1, h2 = hidden[:stop - start], features[start:stop]
            np.matmul(xb, W1, out=h1)
            h1 += b1
            np.maximum(h1, 0, out=h1)
            np.matmul(h1, W2, out=h2)
            h2 += b2
            np.maximum(h2, 0, out=h2)
        np.matmul(features, W3, out=logits)
        logits += b3
        return features, logits

    def features(self, x, batch_size=2000):
        """The last hidden layer's activations (N, H): the space of the Fréchet distance."""
        return self.forward(x, batch_size)[0]

    def predict(self, x, batch_size=2000):
        """The predicted digit of each image, (N,) int64."""
        return self.forward(x, batch_size)[1].argmax(axis=1)

    def accuracy(self, x, labels):
        return float(np.mean(self.predict(x) == np.asarray(labels)))

    # ---- the cache file
    def save(self, path):
        """Write to ``path`` (.npz) through a temporary file and a rename."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"meta": np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)}
        for i, (W, b) in enumerate(self.weights, 1):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        with atomic_write(path) as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read a file written by ``save``; ValueError if it is not a valid evaluator
        (also for an empty file, a FIFO or a folder, which are not even opened as .npz)."""
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
                    weights = [(f[f"W{i}"], f[f"b{i}"]) for i in (1, 2, 3)]
            if not isinstance(meta, dict):
                raise ValueError("its meta is not a JSON object")
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a valid evaluator file ({err})") from None
        if meta.get("version") != EVALUATOR_VERSION:
            raise ValueError(f"{path}: evaluator version {meta.get('version')!r}, "
                             f"expected {EVALUATOR_VERSION!r}")
        if json.loads(json.dumps(EVALUATOR_RECIPE)) != meta.get("recipe"):
            raise ValueError(f"{path}: trained with another recipe ({meta.get('recipe')})")
        sizes = [784, *EVALUATOR_RECIPE["hidden"], N_DIGITS]
        for (W, b), n_in, n_out in zip(weights, sizes[:-1], sizes[1:]):
            if W.shape != (n_in, n_out) or b.shape != (n_out,) or not (
                    np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"{path}: evaluator weights have the wrong shape or are not finite")
        return cls(weights, meta)


DATASETS = ("mnist", "fashion")   # an evaluator each, same recipe, cached apart


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


def evaluator_path(dataset="mnist"):
    """Where the evaluator is cached: <data folder>/evaluator-<version>.npz
    (Fashion-MNIST's: evaluator-fashion-<version>.npz)."""
    prefix = "evaluator" if dataset == "mnist" else f"evaluator-{dataset}"
    return data.data_dir() / f"{prefix}-{EVALUATOR_VERSION}.npz"


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


def build_classifier(recipe, rng):
    """Dropout → [Linear → ReLU → Dropout] per hidden layer → Linear (logits)."""
    sizes = [784, *recipe["hidden"]]
    layers = [Dropout(recipe["input_dropout"], rng)]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(n_in, n_out, rng, "he"), ReLU(), Dropout(recipe["dropout"], rng)]
    layers.append(Linear(sizes[-1], N_DIGITS, rng, "xavier"))
    return Sequential(layers)


def _weights_of(net):
    """The Linear layers' (W, b) for an Evaluator that takes images in [−1, 1].

    The network was trained on u = (x + 1)/2 in [0, 1]; since
    u W1 + b1 = x (W1/2) + (b1 + Σ_rows W1 / 2), the rescaling folds into the
    first layer and costs nothing at inference."""
    weights = [(layer.W.copy(), layer.b.copy()) for layer in net.layers if isinstance(layer, Linear)]
    W1, b1 = weights[0]
    weights[0] = (W1 * 0.5, b1 + 0.5 * W1.sum(axis=0, dtype=np.float64).astype(np.float32))
    return weights


def train_evaluator(recipe=None, directory=None, log=print, dataset="mnist"):
    """Train the evaluator on train[:50000]; keep the epoch with the best accuracy on
    train[50000:60000]; report the test accuracy. Returns an ``Evaluator``."""
    recipe = {**EVALUATOR_RECIPE, **(recipe or {})}
    start_time = time.perf_counter()
    images, labels = load_images(dataset, "train", directory=directory)
    x_val, y_val = images[VALIDATION], labels[VALIDATION]   # in [−1, 1], for the Evaluator
    x_train, y_train = images[:TRAIN_SIZE], labels[:TRAIN_SIZE]
    x_train += 1   # the network trains on pixels in [0, 1]; see _weights_of
    x_train *= 0.5
    rng = np.random.default_rng(recipe["seed"])
    net = build_classifier(recipe, rng)
    opt = Adam(net.flat_params, net.flat_grads, lr=recipe["lr"], beta1=0.9, beta2=0.999)
    B, epochs = recipe["batch_size"], recipe["epochs"]
    n_batches = TRAIN_SIZE // B
    best = (-1.0, 0, None)
    history = []
    # a fixed number of BLAS threads: OpenBLAS's sums, and so the trained weights, differ
    # between 1 and 2 threads (test accuracy 0.9883 against 0.9885); the cached evaluators
    # were trained with 2, the default on the project's 2-core machines
    with blas_threads(EVALUATOR_THREADS):
        for epoch in range(1, epochs + 1):
            # the learning rate falls linearly, epoch by epoch, from lr towards lr/20
            opt.lr = recipe["lr"] * (1 - (epoch - 1) / epochs * 0.95)
            x_epoch = random_shifts(x_train, recipe["shift"], rng) if recipe["shift"] else x_train
            order = rng.permutation(TRAIN_SIZE)
            loss_sum = 0.0
            for i in range(n_batches):
                idx = order[i * B:(i + 1) * B]
                logits = net.forward(x_epoch[idx])  # fancy indexing: a copy (dropout works in place)
                loss, grad = softmax_cross_entropy(logits, y_train[idx])
                net.backward(grad, input_grad=False)
                opt.step()
                loss_sum += loss
            evaluator = Evaluator(_weights_of(net))
            val_acc = evaluator.accuracy(x_val, y_val)
            history.append({"epoch": epoch, "loss": loss_sum / n_batches, "val_acc": val_acc})
            if val_acc > best[0]:
                best = (val_acc, epoch, evaluator.weights)
            if log:
                log(f"  evaluator epoch {epoch}/{epochs}: loss {loss_sum / n_batches:.4f}, "
                    f"validation accuracy {val_acc:.4f}")
    val_acc, best_epoch, weights = best
    x_test, y_test = load_images(dataset, "test", directory=directory)  # in [−1, 1]
    evaluator = Evaluator(weights)
    test_acc = evaluator.accuracy(x_test, y_test)
    evaluator.meta = {"version": EVALUATOR_VERSION, "recipe": recipe, "epoch": best_epoch,
                      "validation_accuracy": val_acc, "test_accuracy": test_acc,
                      "seconds": time.perf_counter() - start_time, "history": history}
    return evaluator


_EVALUATORS = {}


def load_evaluator(path=None, train=True, log=None, dataset="mnist", must_cache=False):
    """The cached evaluator; trained (and cached) the first time if ``train``.

    A damaged or outdated cache file is replaced. Kept in memory per process.
    Whether the cache can be written is known before the minutes of training:
    with ``must_cache`` a cache that cannot be is a DataError then, otherwise
    the evaluator is kept for this session only."""
    path = Path(path or evaluator_path(dataset))
    if path in _EVALUATORS:
        return _EVALUATORS[path]
    log = log or (lambda msg: print(msg, file=sys.stderr))
    evaluator = None
    if path.exists() and not path.is_file():   # never trained for minutes, then refused
        raise data.DataError(f"{path} is {kind_of(os.stat(path).st_mode)}, not a regular file: "
                             "remove it, and the evaluator will be trained and cached there again")
    if path.exists():
        try:
            evaluator = Evaluator.load(path)
        except ValueError as err:
            log(f"{err}; training a new one")
    if evaluator is None:
        if not train:
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
        name = "MNIST" if dataset == "mnist" else "Fashion-MNIST"
        log(f"training the {name} evaluator, once (a few minutes); it will be cached as {path}")
        evaluator = train_evaluator(log=log, dataset=dataset)
        try:
            evaluator.save(path)
        except OSError as err:
            log(f"could not cache the evaluator in {path} ({err.strerror or err}); "
                "it is kept for this session only (set NPGAN_DATA to a writable folder)")
        m = evaluator.meta
        log(f"evaluator ready: epoch {m['epoch']}, validation accuracy {m['validation_accuracy']:.4f}, "
            f"test accuracy {m['test_accuracy']:.4f}, {m['seconds']:.0f} s")
    _EVALUATORS[path] = evaluator
    return evaluator
