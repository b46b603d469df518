"""The retired evaluator, version 2: an MLP (784 → 800 → 800 → 10), kept for history.

Until issue 27 it scored every model of the book: FD in its last hidden layer
(800 numbers per image), digit shares and label accuracy from its predictions
(98.85 % test accuracy on MNIST, 87.6 % on Fashion-MNIST). Its feature space
sees pixel intensities more than shapes: every pixel 0.02 brighter moves its
real-vs-real FD about 5× (experiments/evaluator_sensitivity.py). The book now
scores with the CNN of evaluator.py; this one is read (and, on a machine
without its file, trained again) only to compare the two: the sensitivity table
and the re-scoring of the book's runs (experiments/rescore_book_runs.py).

Same protocol and cache as the CNN (evaluator_training.py), in its own file:
evaluator[-fashion]-2.npz. Pure NumPy.
"""

import sys

import numpy as np

from .evaluator_training import (IMAGE_SIDE, N_DIGITS, cache_path, check_recipe, fit,
                                 load_or_train, read_arrays, save_arrays)
from .layers import Dropout, Linear, ReLU, Sequential

MLP_VERSION = "2"
MLP_THREADS = 2   # the cached files were trained with 2 BLAS threads (test accuracy 0.9885; 1 gives 0.9883)
MLP_RECIPE = {
    "hidden": (800, 800),    # 784 → 800 → 800 → 10
    "input_dropout": 0.0,
    "dropout": 0.3,          # after each hidden ReLU
    "epochs": 15,
    "batch_size": 128,
    "lr": 1e-3,              # Adam (β1 0.9), lr·(1 − 0.95·(epoch − 1)/epochs) in each epoch
    "shift": 2,              # augmentation: random shifts of up to ±2 pixels
    "seed": 0,
}


class MLPEvaluator:
    """The MLP classifier, inference only: x (N, 784) in [−1, 1] →
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
        """The last hidden layer's activations (N, H): the space of its Fréchet distance."""
        return self.forward(x, batch_size)[0]

    def predict(self, x, batch_size=2000):
        return self.forward(x, batch_size)[1].argmax(axis=1)

    def accuracy(self, x, labels):
        return float(np.mean(self.predict(x) == np.asarray(labels)))

    def save(self, path):
        arrays = {}
        for i, (W, b) in enumerate(self.weights, 1):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        return save_arrays(path, self.meta, arrays)

    @classmethod
    def load(cls, path):
        """Read a file written by ``save``; ValueError if it is not a valid version-2 evaluator."""
        meta, arrays = read_arrays(path, [f"{p}{i}" for i in (1, 2, 3) for p in "Wb"])
        check_recipe(path, meta, MLP_VERSION, MLP_RECIPE)
        weights = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in (1, 2, 3)]
        sizes = [784, *MLP_RECIPE["hidden"], N_DIGITS]
        for (W, b), n_in, n_out in zip(weights, sizes[:-1], sizes[1:]):
            if W.shape != (n_in, n_out) or b.shape != (n_out,) or not (
                    np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"{path}: evaluator weights have the wrong shape or are not finite")
        return cls(weights, meta)


def build_mlp(recipe, rng):
    """Dropout → [Linear → ReLU → Dropout] per hidden layer → Linear (logits)."""
    sizes = [784, *recipe["hidden"]]
    layers = [Dropout(recipe["input_dropout"], rng)]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(n_in, n_out, rng, "he"), ReLU(), Dropout(recipe["dropout"], rng)]
    layers.append(Linear(sizes[-1], N_DIGITS, rng, "xavier"))
    return Sequential(layers)


def _snapshot(net):
    """The Linear layers' (W, b) as an MLPEvaluator that takes images in [−1, 1].

    The network was trained on u = (x + 1)/2 in [0, 1]; since
    u W1 + b1 = x (W1/2) + (b1 + Σ_rows W1 / 2), the rescaling folds into the
    first layer and costs nothing at inference."""
    weights = [(layer.W.copy(), layer.b.copy()) for layer in net.layers if isinstance(layer, Linear)]
    W1, b1 = weights[0]
    weights[0] = (W1 * 0.5, b1 + 0.5 * W1.sum(axis=0, dtype=np.float64).astype(np.float32))
    return MLPEvaluator(weights)


def train_mlp_evaluator(log=print, dataset="mnist"):
    """Train the version-2 MLP by the shared protocol (evaluator_training.fit)."""
    evaluator, facts = fit(build_mlp, _snapshot, MLP_RECIPE, dataset, MLP_THREADS, log)
    evaluator.meta = {"version": MLP_VERSION, "recipe": MLP_RECIPE, **facts}
    return evaluator


_MLP_EVALUATORS = {}


def mlp_path(dataset="mnist"):
    """<data folder>/evaluator-2.npz (Fashion-MNIST's: evaluator-fashion-2.npz)."""
    return cache_path(MLP_VERSION, dataset)


def load_mlp_evaluator(dataset="mnist", train=True, log=None, must_cache=False):
    """The cached version-2 evaluator, trained (and cached) the first time if ``train``;
    ``must_cache`` as in evaluator.load_evaluator."""
    name = "retired MLP " + ("MNIST" if dataset == "mnist" else "Fashion-MNIST")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    trainer = (lambda: train_mlp_evaluator(log=log, dataset=dataset)) if train else None
    return load_or_train(mlp_path(dataset), MLPEvaluator.load, trainer, _MLP_EVALUATORS, log, name,
                         must_cache)
