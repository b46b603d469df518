"""Evaluating a generator (chapter 21.5): digit shares, label accuracy,
Fréchet distance and the Parzen-window log-likelihood.

Everything is measured with an *evaluator*: an MNIST classifier trained by
npgan itself (784 → 800 → 800 → 10, ReLU, dropout 0.3, Adam, random shifts of
±2 pixels; about 98.8 % test accuracy), cached in the data folder as
``evaluator-<version>.npz`` and trained automatically the first time it is
needed. Its predictions give the digit shares and the label accuracy; its last
hidden layer (800 numbers per image) is the feature space of the Fréchet
distance.

The Fréchet distance between two sets of features, each summarised by a
Gaussian N(μ, C), is

    FD = ‖μ1 − μ2‖² + Tr C1 + Tr C2 − 2 Tr (C1 C2)^(1/2).

It is 0 only for identical statistics, and even two samples of real digits are
not 0 apart: every FD here is reported beside the real-vs-real floor
(10,000 training images against the 10,000 test images).

The Parzen-window estimate (Goodfellow et al. 2014) puts a Gaussian of width σ
on each of N generated images μ_i (pixels in [0, 1]) and scores a test image x
by its log-density under that mixture:

    log p(x) = logsumexp_i(−‖x − μ_i‖² / (2σ²)) − log N − d·log(σ √(2π)).

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
from .optim import Adam

N_DIGITS = 10
IMAGE_SIDE = 28

# The evaluator's recipe. Changing anything here changes its weights, so the
# version (part of the cache file's name) must change too.
EVALUATOR_VERSION = "2"
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


# ------------------------------------------------------------------ evaluator

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
    for epoch in range(1, epochs + 1):
        # the learning rate falls linearly, epoch by epoch, from lr towards lr/20
        opt.lr = recipe["lr"] * (1 - (epoch - 1) / epochs * 0.95)
        x_epoch = random_shifts(x_train, recipe["shift"], rng) if recipe["shift"] else x_train
        order = rng.permutation(TRAIN_SIZE)
        loss_sum = 0.0
        for i in range(n_batches):
            idx = order[i * B:(i + 1) * B]
            logits = net.forward(x_epoch[idx])  # fancy indexing: a copy, dropout may work in place
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


# ------------------------------------------------------------------ drawing samples

def _check_generator(model):
    for name in ("generate", "sample_noise"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"expected a GAN/CGAN (an object with generate(z, labels) and "
                            f"sample_noise(n, rng)), got {type(model).__name__} without {name}()")
    if getattr(model, "conditional", False):
        n_classes = getattr(getattr(model, "config", None), "n_classes", N_DIGITS)
        if n_classes != N_DIGITS:
            raise ValueError(f"the evaluator knows {N_DIGITS} digits; this CGAN has {n_classes} classes")


def draw_samples(model, n, seed=0, labels=None, batch_size=2000):
    """n images (n, 784) in [−1, 1] from ``model``, float32, drawn batch by batch
    with noise from np.random.default_rng(seed).

    ``model`` is anything with ``generate(z, labels)``, ``sample_noise(n, rng)``
    and ``conditional`` (npgan's GAN and CGAN). A CGAN without ``labels`` gets
    the digits 0, 1, …, 9 in turn, so every digit is asked for equally often."""
    _check_generator(model)
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    conditional = bool(getattr(model, "conditional", False))
    if conditional:
        labels = np.arange(n) % N_DIGITS if labels is None else np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {labels.shape}")
    elif labels is not None:
        raise ValueError("a plain GAN takes no labels")
    rng = np.random.default_rng(seed)
    out = np.empty((n, IMAGE_SIDE * IMAGE_SIDE), np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        z = model.sample_noise(stop - start, rng)
        out[start:stop] = model.generate(z, labels[start:stop] if conditional else None)
    if not np.all(np.isfinite(out)):
        raise ValueError("the generator produced NaN or infinite pixels: its weights have diverged")
    return out


# ------------------------------------------------------------------ digits

def shares_of(predictions):
    """Share of each digit 0–9 among predicted digits, and KL(shares ‖ uniform) in nats:
    Σ_k p_k log(10 p_k), with 0·log 0 = 0. 0 for perfectly even shares, log 10 ≈ 2.303
    when every image is the same digit."""
    counts = np.bincount(np.asarray(predictions), minlength=N_DIGITS)[:N_DIGITS]
    shares = counts / counts.sum()
    nz = shares > 0
    kl = float(np.sum(shares[nz] * np.log(shares[nz] * N_DIGITS)))
    return shares, kl


def digit_shares(model, n=10_000, seed=0, evaluator=None):
    """Which digits does a generator draw? Classify n samples with the evaluator.

    Returns {"shares": [share of 0, …, 9], "kl_uniform": KL(shares ‖ uniform) in nats,
    "max_share": the largest share, "n": n}. A CGAN is asked for every digit equally often."""
    _check_generator(model)
    evaluator = evaluator or load_evaluator()
    shares, kl = shares_of(evaluator.predict(draw_samples(model, n, seed)))
    return {"shares": shares.tolist(), "kl_uniform": kl, "max_share": float(shares.max()), "n": n}


def label_accuracy(model, n_per_digit=1000, seed=0, evaluator=None):
    """CGAN: the share of samples that the evaluator reads as the digit they were asked for.

    Returns {"overall": share, "per_digit": [share for 0, …, 9], "n_per_digit": n}."""
    if not getattr(model, "conditional", False):
        raise ValueError("label accuracy needs a conditional model (a CGAN); this one takes no labels")
    _check_generator(model)
    evaluator = evaluator or load_evaluator()
    labels = np.arange(N_DIGITS * n_per_digit) % N_DIGITS
    predicted = evaluator.predict(draw_samples(model, len(labels), seed, labels))
    return _label_accuracy(predicted, labels, n_per_digit)


def _label_accuracy(predicted, labels, n_per_digit):
    hit = predicted == labels
    per_digit = [float(hit[labels == k].mean()) for k in range(N_DIGITS)]
    return {"overall": float(hit.mean()), "per_digit": per_digit, "n_per_digit": n_per_digit}


# ------------------------------------------------------------------ Fréchet distance

def _mean_cov(feats, batch_size=5000):
    """Mean (H,) and covariance (H, H) in float64, with divisor N − 1."""
    feats = np.asarray(feats)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"expected features of shape (N, H) with N ≥ 2, got {feats.shape}")
    n = len(feats)
    mean = feats.mean(axis=0, dtype=np.float64)
    cov = np.zeros((feats.shape[1],) * 2)
    for start in range(0, n, batch_size):
        centred = feats[start:start + batch_size].astype(np.float64)
        centred -= mean
        cov += centred.T @ centred
    cov /= n - 1
    return mean, cov


def _sqrt_psd(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix,
    through its eigen-decomposition (tiny negative eigenvalues from rounding → 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_from_stats(mean_a, cov_a, mean_b, cov_b):
    """‖μa − μb‖² + Tr Ca + Tr Cb − 2 Tr (Ca Cb)^(1/2).

    Ca Cb is not symmetric, but it is similar to S Cb S with S = Ca^(1/2)
    (symmetric, PSD), so Tr (Ca Cb)^(1/2) = Σ sqrt(eigenvalues of S Cb S):
    two symmetric eigen-decompositions, no general matrix square root."""
    s = _sqrt_psd(cov_a)
    middle = s @ cov_b @ s
    middle = (middle + middle.T) / 2          # symmetric up to rounding: make it exact
    eig = np.clip(np.linalg.eigvalsh(middle), 0, None)
    diff = mean_a - mean_b
    fd = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eig).sum()
    return float(max(fd, 0.0))


def frechet_distance(feats_a, feats_b):
    """Fréchet distance between two sets of feature vectors (N, H) and (M, H),
    each summarised by its mean and covariance (float64)."""
    feats_a, feats_b = np.asarray(feats_a), np.asarray(feats_b)
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"expected two (N, H) arrays with the same H, got {feats_a.shape} and {feats_b.shape}")
    return frechet_from_stats(*_mean_cov(feats_a), *_mean_cov(feats_b))


_REFERENCE = {}


def held_out(dataset="mnist", against="test"):
    """The real images the measures compare with. "test": the 10,000 test images
    (the book's figures). "validation": train[50000:60000], for tuning without
    the test set (experiments/scoreboard.py trains on train[:50000] then)."""
    if against == "test":
        return load_images(dataset, "test")[0]
    if against == "validation":
        return load_images(dataset, "train")[0][VALIDATION]
    raise ValueError(f"against must be 'test' or 'validation', got {against!r}")


def _reference(evaluator, dataset="mnist", against="test"):
    """Statistics of the evaluator's features for the held-out images (the 10,000
    test images, or the validation images), and the real-vs-real floor: the FD
    of the first 10,000 training images from them."""
    key = (id(evaluator), dataset, against)
    if key not in _REFERENCE:
        x_held_out = held_out(dataset, against)
        x_train, _ = load_images(dataset, "train", subset=10_000)
        stats = _mean_cov(evaluator.features(x_held_out))
        floor = frechet_from_stats(*_mean_cov(evaluator.features(x_train)), *stats)
        _REFERENCE[key] = (evaluator, stats, floor)  # the evaluator is kept so its id stays unique
    return _REFERENCE[key][1:]


def fid(model, n=10_000, seed=0, evaluator=None):
    """Fréchet distance between n generated images and the 10,000 MNIST test images
    in the evaluator's feature space, beside the real-vs-real floor.

    Returns {"fd": FD(generated, test), "fd_floor": FD(10,000 training images, test)}."""
    _check_generator(model)
    dataset = dataset_of(model)
    evaluator = evaluator or load_evaluator(dataset=dataset)
    feats = evaluator.features(draw_samples(model, n, seed))
    test_stats, floor = _reference(evaluator, dataset)
    return {"fd": frechet_from_stats(*_mean_cov(feats), *test_stats), "fd_floor": floor}


# ------------------------------------------------------------------ Parzen window

PARZEN_SIGMAS = np.logspace(-1, 0, 10)


def _sq_distances(x, mu, mu_sq):
    """‖x_j − μ_i‖² for a batch of test points x (b, d) and all centres μ (N, d), float64:
    ‖x‖² + ‖μ‖² − 2 x·μ (one matmul), clipped at 0 against rounding."""
    d2 = x @ mu.T
    d2 *= -2
    d2 += mu_sq
    d2 += np.einsum("ij,ij->i", x, x)[:, None]
    return np.maximum(d2, 0, out=d2)


def _parzen_ll(x, mu, sigmas, batch_size):
    """log p(x_j) under the Parzen mixture for each test point and each σ: (len(sigmas), M)."""
    n, dim = mu.shape
    mu_sq = np.einsum("ij,ij->i", mu, mu)
    out = np.empty((len(sigmas), len(x)))
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], dtype=np.float64)
        d2 = _sq_distances(xb, mu, mu_sq)                # (b, N)
        d2_min = d2.min(axis=1)                          # log-sum-exp around the largest term
        for k, sigma in enumerate(sigmas):
            a = -1 / (2 * sigma**2)
            lse = np.log(np.exp((d2 - d2_min[:, None]) * a).sum(axis=1)) + a * d2_min
            out[k, start:start + len(xb)] = lse - np.log(n) - dim * np.log(sigma * np.sqrt(2 * np.pi))
    return out


def parzen_log_likelihood(samples, test, sigmas=PARZEN_SIGMAS, validation=None, batch_size=250):
    """Mean Parzen-window log-likelihood of ``test`` under Gaussians of width σ centred
    on ``samples`` (Goodfellow et al. 2014), with its standard error.

    samples (N, d), test (M, d), validation (V, d): pixels in [0, 1] (scale G's
    [−1, 1] output by (x + 1)/2 first). σ is the value among ``sigmas`` with the
    highest mean log-likelihood of ``validation``; with one σ, validation may be None.
    All in float64, batch by batch (a batch needs batch_size × N × 8 bytes, 20 MB
    for 250 × 10,000).

    Returns {"mean": mean log p(x) over test, "se": std / sqrt(M), "sigma": the σ used,
    "sigmas": the candidates, "validation_ll": their mean validation log-likelihoods}."""
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if sigmas.ndim != 1 or len(sigmas) == 0 or np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be positive numbers, got {sigmas}")
    arrays = {"samples": samples, "test": test}
    if validation is not None:
        arrays["validation"] = validation
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.ndim != 2 or len(arr) == 0:
            raise ValueError(f"{name} must be a non-empty (N, d) array, got shape {arr.shape}")
        if arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
            raise ValueError(f"{name} must hold pixels in [0, 1], found values in "
                             f"[{arr.min():.3g}, {arr.max():.3g}]; scale [-1, 1] images by (x + 1) / 2")
    if len({np.shape(a)[1] for a in arrays.values()}) != 1:
        raise ValueError("samples, test and validation must have the same number of pixels")
    mu = np.asarray(samples, dtype=np.float64)
    if len(sigmas) == 1:
        sigma, val_ll = float(sigmas[0]), None
        if validation is not None:
            val_ll = _parzen_ll(validation, mu, sigmas, batch_size).mean(axis=1)
    else:
        if validation is None:
            raise ValueError("choosing σ needs validation images; give validation=..., or a single σ")
        val_ll = _parzen_ll(validation, mu, sigmas, batch_size).mean(axis=1)
        sigma = float(sigmas[np.argmax(val_ll)])
    ll = _parzen_ll(test, mu, [sigma], batch_size)[0]
    return {"mean": float(ll.mean()), "se": float(ll.std() / np.sqrt(len(ll))), "sigma": sigma,
            "sigmas": sigmas.tolist(), "validation_ll": None if val_ll is None else val_ll.tolist()}


def _to_unit(images):
    x = np.asarray(images, dtype=np.float64)
    x += 1
    x *= 0.5
    return np.clip(x, 0, 1, out=x)


def parzen_figure(images, n_validation=1000, dataset="mnist", against="test"):
    """The chapter's Parzen figure for images (N, 784) in [−1, 1] (10,000 generated, or real):
    σ from logspace(−1, 0, 10) chosen on the first ``n_validation`` images of
    train[50000:60000], then the mean log-likelihood of the 10,000 test images ± its
    standard error. With against="validation" (tuning without the test set) the
    rest of train[50000:60000] takes the test images' place."""
    validation = held_out(dataset, "validation")
    scored = held_out(dataset, against) if against == "test" else validation[n_validation:]
    return parzen_log_likelihood(_to_unit(images), _to_unit(scored), PARZEN_SIGMAS,
                                 _to_unit(validation[:n_validation]))


def real_parzen(n=10_000):
    """Parzen figure of n real training images (train[:n]) in place of generated ones:
    what a perfect copy of the training set would score."""
    train, _ = data.load_mnist("train", subset=n)
    return parzen_figure(train)


# ------------------------------------------------------------------ everything

def evaluate(model, parzen=False, seed=0, n=10_000, evaluator=None, against="test"):
    """Every figure of the evaluation section for a GAN, CGAN or InfoGAN, in one dict.

    One set of n samples (np.random.default_rng(seed); for a CGAN the labels cycle
    0–9, n/10 each) gives: the digit shares and their KL from uniform; the
    Fréchet distance to the test images beside the real-vs-real floor; for a CGAN
    the label accuracy overall and per digit; for an InfoGAN what its codes learned
    (codes.evaluate_codes: c1's matched accuracy, the sweeps); with ``parzen=True`` the Parzen
    log-likelihood (slow: about a minute). ``against="validation"`` compares with
    train[50000:60000] instead of the test images (see held_out)."""
    _check_generator(model)
    dataset = dataset_of(model)   # Fashion-MNIST's DCGAN: scored by the Fashion-MNIST evaluator
    evaluator = evaluator or load_evaluator(dataset=dataset)
    conditional = bool(getattr(model, "conditional", False))
    start = time.perf_counter()
    images = draw_samples(model, n, seed)
    feats, logits = evaluator.forward(images)
    predicted = logits.argmax(axis=1)
    shares, kl = shares_of(predicted)
    test_stats, floor = _reference(evaluator, dataset, against)
    result = {"model": getattr(model, "name", "cgan" if conditional else "gan"), "dataset": dataset,
              "n_samples": n, "seed": seed, "against": against,
              "digit_shares": shares.tolist(), "kl_uniform": kl, "max_share": float(shares.max()),
              "fd": frechet_from_stats(*_mean_cov(feats), *test_stats), "fd_floor": floor}
    if conditional:
        labels = np.arange(n) % N_DIGITS
        acc = _label_accuracy(predicted, labels, n // N_DIGITS)
        result["label_accuracy"] = acc["overall"]
        result["label_accuracy_per_digit"] = acc["per_digit"]
    if hasattr(model, "code_slices"):   # InfoGAN: what its codes learned (codes.py)
        from .codes import evaluate_codes

        result["codes"] = evaluate_codes(model, seed=seed, evaluator=evaluator)
    if parzen:
        p = parzen_figure(images, dataset=dataset, against=against)
        result.update(parzen_mean=p["mean"], parzen_se=p["se"], parzen_sigma=p["sigma"])
    result["evaluator"] = {"version": EVALUATOR_VERSION,
                           "test_accuracy": evaluator.meta.get("test_accuracy")}
    result["seconds"] = time.perf_counter() - start
    return result
