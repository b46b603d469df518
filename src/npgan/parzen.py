"""The Parzen-window log-likelihood of generated images (chapter 21.4).

The Parzen-window estimate (Goodfellow et al. 2014) puts a Gaussian of width σ
on each of N generated images μ_i (pixels in [0, 1]) and scores a test image x
by its log-density under that mixture:

    log p(x) = logsumexp_i(−‖x − μ_i‖² / (2σ²)) − log N − d·log(σ √(2π)).

Pure NumPy: no SciPy, no PyTorch.
"""

import numpy as np

from . import data
from .evaluator import held_out

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

