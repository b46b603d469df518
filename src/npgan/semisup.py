"""Semi-supervised InfoGAN (Spurr et al. 2017; chapter 21.7): a few labelled
training images give the categorical code c1 its meaning.

Mutual information rewards any split of the digits that Q can read back, not
the split into digits. With ``n_labels`` = n > 0, n training images, n/K of
each of the K values of c1 (K = 10 digits), are chosen once by the seed, and
Q's c1 head is also trained to read their labels: every D step takes B of them
(drawn with replacement, so that n may be smaller than the batch) as a third
block of rows after the real and the fake ones, and D with Q minimises, beside
the unsupervised terms,

    λ_label · mean over those B rows of CE(softmax(Q's c1 logits of x), y)   (eq-infogan-label),

whose gradient w.r.t. the logits is λ_label (softmax − onehot(y)) / B
(losses.softmax_cross_entropy). The labelled rows give D's real/fake logit no
gradient; G still learns only through D and Q, so c1 = k comes to draw the
digit k because Q reads k that way.

The images come from train[:50000] only: never the test images, never the
validation images train[50000:60000] (evaluator.VALIDATION) on which the book
chooses among settings. The choice is nested: for one seed, the 10 images of
n = 100 are among those of n = 300, so a curve over n adds labels to a fixed
set instead of drawing a new one.
"""

from dataclasses import dataclass

import numpy as np

from .evaluator import VALIDATION


@dataclass
class LabelledSet:
    """The labelled images one model trains its c1 head on."""

    index: np.ndarray     # positions in the training set (sorted)
    images: np.ndarray    # (n, 784) in [−1, 1], in the model's dtype
    labels: np.ndarray    # (n,) values of c1, 0…K−1


def choose_labelled(labels, n, seed, n_values=10):
    """Positions of n training images, n / n_values of each label 0…n_values−1,
    drawn by ``seed`` from the first 50,000 (the part before evaluator.VALIDATION).
    For one seed, a smaller n gives a subset of a larger n's images (nested).
    ValueError if n is not a multiple of n_values or a label has too few images."""
    labels = np.asarray(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or n % n_values:
        raise ValueError(f"the number of labelled images must be a positive multiple of "
                         f"{n_values} (the same number of each value of c1), got {n!r}")
    pool = labels[:VALIDATION.start]      # never the validation images (nor the test images)
    per_value = n // n_values
    rng = np.random.default_rng(seed)
    chosen = []
    for value in range(n_values):       # one permutation per value whatever n: nested sets
        where = np.flatnonzero(pool == value)
        if len(where) < per_value:
            raise ValueError(f"{n} labelled images need {per_value} of each value; the training "
                             f"images before the validation split hold {len(where)} with label "
                             f"{value}: ask for fewer labels or use more images")
        chosen.append(rng.permutation(where)[:per_value])
    return np.sort(np.concatenate(chosen))


def labelled_set(images, labels, n, seed, n_values=10, dtype=np.float32):
    """The LabelledSet of ``choose_labelled`` (images copied, in ``dtype``)."""
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() >= n_values):
        raise ValueError(f"labels must be whole numbers 0…{n_values - 1} (the values of c1)")
    index = choose_labelled(labels, n, seed, n_values)
    return LabelledSet(index, np.asarray(images[index], dtype=dtype), labels[index].astype(np.int64))
