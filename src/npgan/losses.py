"""Binary cross-entropy, computed from logits (chapter 21.1, eq-bce).

With a = sigmoid(z) the chapter's loss for one sample is

    ℓ = -[y log a + (1 - y) log(1 - a)].

Written with the logit z this is ℓ = softplus(z) - y·z, and in the form that
never overflows, for any z:

    ℓ = max(z, 0) - y·z + log(1 + e^(-|z|)).

Its gradient is remarkably simple: dℓ/dz = a - y. The loss of a batch is the
mean over its N samples, so the gradient handed to backward is (a - y) / N.
"""

import numpy as np


def sigmoid(z):
    """1 / (1 + e^(-z)), written as (1 + tanh(z/2)) / 2 so that it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy of sigmoid(logits) against targets.

    logits, targets: arrays of the same shape, e.g. (N, 1); targets in [0, 1].
    Returns (loss, dloss/dlogits, sigmoid(logits)) — the last one because the
    training loop reports D's outputs D(x) and D(G(z)).
    """
    n = logits.shape[0]
    prob = sigmoid(logits)
    loss = np.maximum(logits, 0) - targets * logits + np.log1p(np.exp(-np.abs(logits)))
    grad = (prob - targets) / logits.dtype.type(n)
    return float(loss.sum(dtype=np.float64) / n), grad, prob


def softmax(logits):
    """Row-wise softmax of logits (N, K), computed around each row's maximum so
    that exp never overflows."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer class labels.

    logits: (N, K); labels: (N,) ints in 0…K-1. With the log-sum-exp written
    around the row maximum m, log softmax(z)_k = z_k - m - log Σ_j e^(z_j - m)
    never overflows. The gradient of the mean loss is (softmax(z) - onehot(y)) / N.
    Returns (loss, dloss/dlogits).
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = np.log(total[:, 0]) - shifted[rows, labels]
    grad = exp
    grad /= total
    grad[rows, labels] -= 1
    grad /= logits.dtype.type(n)
    return float(loss.sum(dtype=np.float64) / n), grad


def gaussian_nll(means, targets):
    """Mean over the N rows of the negative log-likelihood of ``targets`` under
    a Gaussian with the given ``means`` and unit variance, without its constant:

        ℓ = ½ Σ_j (t_j − μ_j)²      (+ ½ M log 2π, dropped; it has no gradient)

    means, targets: (N, M). The gradient of the mean loss is (μ − t) / N.
    Returns (loss, dloss/dmeans). (InfoGAN's continuous codes, eq-infogan-q in 21.3.)
    """
    n = means.shape[0]
    diff = means - targets
    loss = 0.5 * float(np.sum(diff * diff, dtype=np.float64)) / n
    diff /= means.dtype.type(n)
    return loss, diff


def batch_cluster_entropy(logits):
    """Springenberg's (2016) unsupervised clustering loss on a batch: the mean
    entropy of each row's softmax minus the entropy of the batch's mean softmax,

        mean_i H(p_i) − H(p̄),   p_i = softmax(z_i),  p̄ = mean_i p_i,

    low when every row is sure of its value and the batch uses all values alike.
    With H_i the row entropies, dH_i/dz_ij = −p_ij (log p_ij + H_i) and
    dH(p̄)/dz_ij = p_ij (Σ_k p_ik log p̄_k − log p̄_j) / N.
    Returns (loss, dloss/dlogits).
    """
    n = logits.shape[0]
    p = softmax(logits).astype(np.float64)
    log_p = np.log(np.maximum(p, 1e-300))
    h_rows = -(p * log_p).sum(axis=1, keepdims=True)
    mean = p.mean(axis=0)
    log_mean = np.log(np.maximum(mean, 1e-300))
    h_mean = -(mean * log_mean).sum()
    grad_rows = -p * (log_p + h_rows) / n
    grad_mean = p * ((p * log_mean).sum(axis=1, keepdims=True) - log_mean) / n
    loss = float(h_rows.mean() - h_mean)
    return loss, (grad_rows - grad_mean).astype(logits.dtype)


def hinge_d_loss(logits, n_real):
    """D's hinge loss (Miyato et al. 2018; Lim & Ye 2017) on the scores of a batch
    whose first ``n_real`` rows are real images and the rest fakes:

        L_D = mean_real relu(1 − D(x)) + mean_fake relu(1 + D(G(z)))

    D is pushed to score reals above 1 and fakes below −1, and no further: a row
    already beyond its margin adds nothing. The gradient is −1/n_real on the real
    rows with D(x) < 1, +1/n_fake on the fakes with D(G(z)) > −1, else 0.
    Returns (loss, dloss/dlogits, sigmoid(logits)), as bce_with_logits (the last
    only for the training log's D(x) and D(G(z)) columns).
    """
    real, fake = logits[:n_real], logits[n_real:]
    n_fake = len(fake)
    grad = np.zeros_like(logits)
    grad[:n_real] = np.where(real < 1, -1.0 / n_real, 0.0)
    grad[n_real:] = np.where(fake > -1, 1.0 / n_fake, 0.0)
    loss = (np.maximum(1 - real, 0).sum(dtype=np.float64) / n_real
            + np.maximum(1 + fake, 0).sum(dtype=np.float64) / n_fake)
    return float(loss), grad, sigmoid(logits)


def hinge_g_loss(logits):
    """G's loss against a hinge-trained D: L_G = −mean D(G(z)), gradient −1/N on
    every row. Returns (loss, dloss/dlogits, sigmoid(logits)), as hinge_d_loss."""
    n = logits.shape[0]
    grad = np.full_like(logits, -1.0 / n)
    return -float(logits.sum(dtype=np.float64) / n), grad, sigmoid(logits)
