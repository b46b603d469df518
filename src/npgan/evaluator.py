"""The evaluator (chapter 21.5): the classifier that scores generated samples.

A small convolutional network trained by npgan itself, from its own layers:

    image 28×28 → conv 5×5, stride 2, 32 maps (14×14) → ReLU
                → conv 3×3, stride 2, 64 maps (7×7)   → ReLU
                → Linear 3136 → 256 → ReLU             (the features)
                → Linear 256 → 10                      (the logits)

Its predictions give the digit shares and the label accuracy; its 256 hidden
features are the space of the Fréchet distance (both measured in metrics.py).
Like the FID's Inception network (Heusel et al. 2017), and the LeNet-style
classifiers used for MNIST, it looks at the image through small filters that
slide over it, so it sees strokes and shapes rather than the brightness of each
pixel: with every pixel of the test images 0.02 brighter, the MLP evaluator it
replaced (evaluator_mlp.py) put them 5.4 times its real-vs-real floor away from
the training images, this one 1.25 times (experiments/evaluator_sensitivity.py).

Trained by the shared protocol (evaluator_training.py: train[:50000], the
epoch chosen on train[50000:], random shifts of ±2 pixels), cached in the data
folder as evaluator-3.npz and trained automatically the first time it is
needed; Fashion-MNIST has its own, with the same recipe (evaluator-fashion-3.npz).

Pure NumPy: no SciPy, no PyTorch.
"""

import hashlib
import sys

import numpy as np

from .conv import Conv2d, Flatten, Reshape
from .evaluator_training import (DATASETS, IMAGE_SIDE, N_DIGITS, TRAIN_SIZE, VALIDATION,  # noqa: F401
                                 cache_path, check_recipe, dataset_of, fit, held_out,
                                 load_images, load_or_train, random_shifts, read_arrays,
                                 save_arrays)
from .layers import Linear, ReLU, Sequential

# The evaluator's recipe. Changing anything here changes its weights, so the
# version (part of the cache file's name) must change too, and EVALUATOR_SHA256.
EVALUATOR_VERSION = "3"
# BLAS threads while it trains, on any machine, whatever the caller set: the weights
# depend on the count. One, the book runs' rule (threads.py): two threads beside
# another training are the slow case.
EVALUATOR_THREADS = 1
EVALUATOR_RECIPE = {
    "channels": (32, 64),    # the two convolutions, each with stride 2: 28 → 14 → 7
    "kernels": (5, 3),
    "hidden": 256,           # the features: the FC layer after the convolutions
    "epochs": 8,
    "batch_size": 64,
    "lr": 1e-3,              # Adam (β1 0.9), lr·(1 − 0.95·(epoch − 1)/epochs) in each epoch
    "shift": 2,              # augmentation: random shifts of up to ±2 pixels
    "seed": 0,
}
# SHA-256 of the trained weights (Evaluator.weights_sha256) with the pinned kernels of
# the Makefile (OPENBLAS_CORETYPE=Haswell, NumPy's AVX-512 loops off): the same on
# every x86-64 machine. tests/test_metrics.py compares the cached evaluators with it.
EVALUATOR_SHA256 = {
    "mnist": "c4497c1f29c8bb115c4ae33ad9f38fc79a5b6880432d629104bb2f9741e15ce4",
    "fashion": "c5d58246d89fa73e6b0429cf605f519e798e04551b27f3268ecf3b4589678a0f",
}


def build_classifier(recipe, rng):
    """The network of the module's docstring, as one Sequential on pixels in [0, 1]
    (B, 784); the maps stay (C, H, W, B) between its Reshape and its Flatten."""
    (c1, c2), (k1, k2) = recipe["channels"], recipe["kernels"]
    side = IMAGE_SIDE // 4   # two stride-2 convolutions with "same" padding
    last = {"batch_last": True}
    return Sequential([
        Reshape(1, IMAGE_SIDE, IMAGE_SIDE, **last),
        Conv2d(1, c1, k1, 2, k1 // 2, rng, **last), ReLU(),
        Conv2d(c1, c2, k2, 2, k2 // 2, rng, **last), ReLU(),
        Flatten(**last),
        Linear(c2 * side * side, recipe["hidden"], rng, "he"), ReLU(),
        Linear(recipe["hidden"], N_DIGITS, rng, "xavier"),
    ])


def architecture(recipe=EVALUATOR_RECIPE):
    """The network in one line, for a page to print: "28×28 → conv 5×5/2 → 32×14×14 → …"."""
    (c1, c2), (k1, k2) = recipe["channels"], recipe["kernels"]
    s = IMAGE_SIDE
    return (f"{s}×{s} → conv {k1}×{k1}/2 → {c1}×{s // 2}×{s // 2} → conv {k2}×{k2}/2 → "
            f"{c2}×{s // 4}×{s // 4} → {recipe['hidden']} → {N_DIGITS}")


# the last layer (the logits' Linear) comes after the features
N_AFTER_FEATURES = 1


class Evaluator:
    """The CNN classifier, inference only: x (N, 784) in [−1, 1] →
    features (N, 256) and logits (N, 10).

    ``params``: all its weights, float32, in one vector (the Sequential's flat_params).
    """

    def __init__(self, params, meta=None):
        self.net = build_classifier(EVALUATOR_RECIPE, np.random.default_rng(0))
        params = np.asarray(params)
        if params.shape != self.net.flat_params.shape:
            raise ValueError(f"expected {self.net.flat_params.size} evaluator weights, got shape {params.shape}")
        self.net.flat_params[...] = params
        self.meta = dict(meta or {})

    @property
    def params(self):
        return self.net.flat_params

    @property
    def n_features(self):
        return EVALUATOR_RECIPE["hidden"]

    def weights_sha256(self):
        """SHA-256 of the weights' bytes (float32, little-endian): the same weights, the same digest."""
        return hashlib.sha256(np.ascontiguousarray(self.params, "<f4").tobytes()).hexdigest()

    def forward(self, x, batch_size=500):
        """(features (N, 256), logits (N, 10)), both float32, computed batch by batch."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"expected images of shape (N, 784) in [-1, 1], got {x.shape}")
        n, layers = len(x), self.net.layers
        features = np.empty((n, self.n_features), np.float32)
        logits = np.empty((n, N_DIGITS), np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            h = x[start:stop].astype(np.float32)   # a copy: the network saw pixels in [0, 1]
            h += 1
            h *= 0.5
            for layer in layers[:-N_AFTER_FEATURES]:
                h = layer.forward(h, train=False)
            features[start:stop] = h
            for layer in layers[-N_AFTER_FEATURES:]:
                h = layer.forward(h, train=False)
            logits[start:stop] = h
        return features, logits

    def features(self, x, batch_size=500):
        """The hidden layer's activations (N, 256): the space of the Fréchet distance."""
        return self.forward(x, batch_size)[0]

    def predict(self, x, batch_size=500):
        """The predicted digit of each image, (N,) int64."""
        return self.forward(x, batch_size)[1].argmax(axis=1)

    def accuracy(self, x, labels):
        return float(np.mean(self.predict(x) == np.asarray(labels)))

    # ---- the cache file
    def save(self, path):
        """Write to ``path`` (.npz) through a temporary file and a rename."""
        return save_arrays(path, self.meta, {"params": self.params})

    @classmethod
    def load(cls, path):
        """Read a file written by ``save``; ValueError if it is not a valid evaluator
        of this version and recipe (also for an empty file, a FIFO or a folder)."""
        meta, arrays = read_arrays(path, ["params"])
        check_recipe(path, meta, EVALUATOR_VERSION, EVALUATOR_RECIPE)
        params = arrays["params"]
        if params.dtype != np.float32 or not np.all(np.isfinite(params)):
            raise ValueError(f"{path}: evaluator weights are not finite float32 numbers")
        try:
            return cls(params, meta)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def evaluator_path(dataset="mnist"):
    """Where the evaluator is cached: <data folder>/evaluator-3.npz
    (Fashion-MNIST's: evaluator-fashion-3.npz)."""
    return cache_path(EVALUATOR_VERSION, dataset)


def _snapshot(net):
    return Evaluator(net.flat_params.copy())


def train_evaluator(recipe=None, directory=None, log=print, dataset="mnist"):
    """Train the evaluator on train[:50000]; keep the epoch with the best accuracy on
    train[50000:60000]; report the test accuracy. Returns an ``Evaluator``.
    ``recipe``: changes to EVALUATOR_RECIPE, for tests (the cache takes only the recipe's own)."""
    recipe = {**EVALUATOR_RECIPE, **(recipe or {})}
    evaluator, facts = fit(build_classifier, _snapshot, recipe, dataset, EVALUATOR_THREADS, log, directory)
    sha = evaluator.weights_sha256()
    evaluator.meta = {"version": EVALUATOR_VERSION, "recipe": recipe, **facts, "sha256": sha}
    expected = EVALUATOR_SHA256.get(dataset)
    if log and recipe == EVALUATOR_RECIPE and expected and sha != expected:
        log(f"note: these evaluator weights differ from the book's (SHA-256 {sha[:12]}…, "
            f"expected {expected[:12]}…): another CPU kernel; the Makefile pins "
            "OPENBLAS_CORETYPE=Haswell and NPY_DISABLE_CPU_FEATURES for the book's")
    return evaluator


_EVALUATORS = {}


def load_evaluator(path=None, train=True, log=None, dataset="mnist", must_cache=False):
    """The cached evaluator; trained (and cached) the first time if ``train``.

    A damaged or outdated cache file is replaced. Kept in memory per process.
    Whether the cache can be written is known before the minutes of training:
    with ``must_cache`` a cache that cannot be is a DataError then, otherwise
    the evaluator is kept for this session only."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    name = "MNIST" if dataset == "mnist" else "Fashion-MNIST"
    # train_evaluator and _EVALUATORS looked up here, when called: tests replace them
    trainer = (lambda: train_evaluator(log=log, dataset=dataset)) if train else None
    return load_or_train(path or evaluator_path(dataset), Evaluator.load, trainer, _EVALUATORS,
                         log, name, must_cache)
