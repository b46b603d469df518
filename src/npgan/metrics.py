"""Evaluating a generator (chapter 21.5): digit shares, label accuracy,
Fréchet distance and the Parzen-window log-likelihood.

Everything is measured with an *evaluator*: a small convolutional MNIST
classifier trained by npgan itself, cached in the data folder and trained
automatically the first time it is needed (evaluator.py: its network and
recipe; evaluator_training.py: its training and cache). Its predictions give
the digit shares and the label accuracy; its hidden layer (256 numbers per
image) is the feature space of the Fréchet distance.
The Parzen-window estimate is in parzen.py. The names of both modules that
notebooks and scripts use as npgan.metrics.X are imported here.

The Fréchet distance between two sets of features, each summarised by a
Gaussian N(μ, C), is

    FD = ‖μ1 − μ2‖² + Tr C1 + Tr C2 − 2 Tr (C1 C2)^(1/2).

It is 0 only for identical statistics, and even two samples of real digits are
not 0 apart: every FD here is reported beside the real-vs-real floor
(10,000 training images against the 10,000 test images).

Pure NumPy: no SciPy, no PyTorch.
"""

import time

import numpy as np

# Not imported here: train_evaluator and the cache _EVALUATORS. load_evaluator
# looks them up in npgan.evaluator, so that is the module to patch in a test.
from .evaluator import (DATASETS, EVALUATOR_RECIPE, EVALUATOR_SHA256, EVALUATOR_VERSION,  # noqa: F401
                        IMAGE_SIDE, N_DIGITS, VALIDATION, Evaluator, dataset_of, evaluator_path,
                        held_out, load_evaluator, load_images, random_shifts)
from .losses import softmax
from .parzen import PARZEN_SIGMAS, parzen_figure, parzen_log_likelihood, real_parzen  # noqa: F401


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


def unsure_share(images, evaluator=None, threshold=0.9):
    """Share of ``images`` (N, 784) that the evaluator cannot place: its most
    likely digit has a softmax probability below ``threshold``. Real test digits
    score a few per cent; a generator whose shapes are no digit at all, more."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold}")
    evaluator = evaluator or load_evaluator()
    _, logits = evaluator.forward(images)
    return float((softmax(logits).max(axis=1) < threshold).mean())


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


def frechet_parts(feats_a, feats_b):
    """The two terms of eq-eval-fd (21.5) apart: {"mean": ‖μa − μb‖², "covariance":
    Tr Ca + Tr Cb − 2 Tr (Ca Cb)^(1/2)}; they add up to frechet_distance(feats_a, feats_b).
    The first says how far the average image moved, the second how differently the
    images spread around it."""
    (mean_a, cov_a), (mean_b, cov_b) = _mean_cov(feats_a), _mean_cov(feats_b)
    total = frechet_from_stats(mean_a, cov_a, mean_b, cov_b)
    diff = mean_a - mean_b
    mean = float(diff @ diff)
    return {"mean": mean, "covariance": total - mean}


_REFERENCE = {}


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

# ------------------------------------------------------------------ everything

def evaluate(model, parzen=False, seed=0, n=10_000, evaluator=None, against="test"):
    """Every figure of the evaluation section for a GAN, CGAN or InfoGAN, in one dict.

    One set of n samples (np.random.default_rng(seed); for a CGAN the labels cycle
    0–9, n/10 each) gives: the digit shares and their KL from uniform; the
    Fréchet distance to the test images beside the real-vs-real floor; for a CGAN
    the label accuracy overall and per digit; for an InfoGAN what its codes learned
    (codes.evaluate_codes: c1's matched accuracy, also at the top level, the sweeps, the
    continuous codes' digit-change rates; Q's reading of the held-out digits); with ``parzen=True`` the Parzen
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
        from .codes import evaluate_codes, q_digit_accuracy

        result["codes"] = evaluate_codes(model, seed=seed, evaluator=evaluator)
        c1 = result["codes"].get("c1")
        if c1 is not None:   # and Q's reading of c1 on the held-out real digits, through c1's matching
            x, y = load_images(dataset, "test") if against == "test" else \
                tuple(a[VALIDATION] for a in load_images(dataset, "train"))
            c1["q_accuracy"], c1["q_sure"] = q_digit_accuracy(model, c1["digit_of_value"], x, y)
            result["c1_matched_accuracy"] = c1["matched_accuracy"]
    if parzen:
        p = parzen_figure(images, dataset=dataset, against=against)
        result.update(parzen_mean=p["mean"], parzen_se=p["se"], parzen_sigma=p["sigma"])
    result["evaluator"] = {"version": evaluator.meta.get("version", EVALUATOR_VERSION),
                           "test_accuracy": evaluator.meta.get("test_accuracy")}
    result["seconds"] = time.perf_counter() - start
    return result
