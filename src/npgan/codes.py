"""What InfoGAN's codes learned (chapter 21.3), measured on generated images.

* c1, the 10-valued code: draw 1,000 images for each value, let the chapter's
  evaluator read the digits, and match the 10 values to the 10 digits one to
  one so that as many images as possible agree (the assignment problem, solved
  exactly by ``assignment``). The matched accuracy is the share that agrees.
  A c1 with K ≠ 10 values is matched the same way, K values to distinct digits
  (the values left over when K > 10 count as wrong). For a semi-supervised
  InfoGAN (semisup.py), whose c1 = k should draw the digit k itself, the share
  with digit = value is reported beside it.
* each continuous code: sweep it from −2 to 2 with z and the other codes held
  fixed, measure every image's slant and width from its moments, and take the
  Spearman rank correlation between the code and each measure for that z; then
  average over the z. (A code that turns a digit's slant steadily has ρ near
  ±1 for slant; the sign only says which way the code was learned.)
* and how often a continuous code changes the digit itself: sweep it across its
  training range [−1, 1] (and across [−2, 2]) with z and the other codes fixed,
  and count the z for which the evaluator reads more than one digit along the
  sweep. A code that only styles the digit changes it for few z; a high share
  says the code carries part of what c1 was meant to hold.
"""

import numpy as np

from .evaluator import N_DIGITS, load_evaluator

SWEEP = np.linspace(-2, 2, 9)   # beyond the training range U(−1, 1), as in Chen et al.
TRAINING_RANGE = np.linspace(-1, 1, 9)   # the prior's range U(−1, 1)


# ------------------------------------------------------------------ c1: the digits

def assignment(gain):
    """Rows → columns, one to one, maximising the total ``gain`` (n × n).

    The Hungarian method with row and column potentials (Kuhn 1955; O(n³)):
    rows are added one at a time, each along the shortest augmenting path of
    reduced costs. Returns cols, with row i matched to column cols[i]."""
    cost = -np.asarray(gain, dtype=np.float64)
    n = cost.shape[0]
    if cost.shape != (n, n):
        raise ValueError(f"assignment needs a square matrix, got {cost.shape}")
    INF = np.inf
    u, v = np.zeros(n + 1), np.zeros(n + 1)     # potentials (index 0: a virtual start)
    row_of = np.zeros(n + 1, dtype=int)          # row_of[j]: row matched to column j (1-based)
    for i in range(1, n + 1):
        row_of[0], j0 = i, 0
        dist, prev, used = np.full(n + 1, INF), np.zeros(n + 1, dtype=int), np.zeros(n + 1, bool)
        while row_of[j0]:
            used[j0] = True
            i0 = row_of[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = ~used[1:] & (reduced < dist[1:])
            dist[1:][better], prev[1:][better] = reduced[better], j0
            free = np.where(~used[1:], dist[1:], INF)
            j1 = int(np.argmin(free)) + 1
            delta = free[j1 - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            dist[1:][~used[1:]] -= delta
            j0 = j1
        while j0:                                # flip the augmenting path
            j1 = prev[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    cols = np.empty(n, dtype=int)
    cols[row_of[1:] - 1] = np.arange(n)
    return cols


def c1_accuracy(model, n_per_value=1000, seed=0, evaluator=None):
    """How well c1 picks the digit. Returns {"confusion": counts [value][digit],
    "digit_of_value": the matched digit of each value, "matched_accuracy",
    "per_value": matched accuracy of each value, "n_per_value"}."""
    K = model.config.n_cat
    if K < 2:
        raise ValueError(f"c1 accuracy needs a categorical code c1; this model's has {K} values")
    evaluator = evaluator or load_evaluator()
    rng = np.random.default_rng(seed)
    values = np.repeat(np.arange(K), n_per_value)
    g_in = model.sample_noise(len(values), rng)     # z and c2, c3 from their priors
    _, cat_part, _ = model.code_slices
    g_in[:, cat_part] = np.eye(K, dtype=g_in.dtype)[values]
    digits = evaluator.predict(_generate(model, g_in))
    confusion = np.zeros((K, N_DIGITS), dtype=int)
    np.add.at(confusion, (values, digits), 1)
    side = max(K, N_DIGITS)              # K ≠ 10: padded with zeros to a square, matched alike
    square = np.zeros((side, side), dtype=int)
    square[:K, :N_DIGITS] = confusion
    digit_of_value = assignment(square)[:K]
    real = digit_of_value < N_DIGITS     # values matched to a padding column: no digit
    hits = np.where(real, confusion[np.arange(K), np.minimum(digit_of_value, N_DIGITS - 1)], 0)
    as_labelled = np.mean(digits == values) if K <= N_DIGITS else 0.0
    return {"confusion": confusion.tolist(),
            "digit_of_value": [int(d) if r else None for d, r in zip(digit_of_value, real)],
            "matched_accuracy": float(hits.sum() / confusion.sum()),
            "accuracy_as_labelled": float(as_labelled),
            "per_value": (hits / n_per_value).tolist(), "n_per_value": n_per_value}


def q_digit_accuracy(model, digit_of_value, images, labels):
    """Q's reading of c1 on real images as a classifier: each image's most likely value,
    turned into a digit by c1's matching (``digit_of_value`` from c1_accuracy), against
    the labels, which only score it. Returns (accuracy, Q's mean top probability)."""
    p_c1, _ = model.read_codes(images)
    lookup = np.array([-1 if d is None else d for d in digit_of_value])   # unmatched: never right
    digits = lookup[p_c1.argmax(axis=1)]
    return float((digits == labels).mean()), float(p_c1.max(axis=1).mean())


def _generate(model, g_in, batch_size=2000):
    out = np.empty((len(g_in), 784), np.float32)
    for start in range(0, len(g_in), batch_size):
        out[start:start + batch_size] = model.generate(g_in[start:start + batch_size])
    if not np.all(np.isfinite(out)):
        raise ValueError("the generator produced NaN or infinite pixels: its weights have diverged")
    return out


# ------------------------------------------------------------------ slant and width

def slant_and_width(images):
    """Per image (N, 784) in [−1, 1], from the moments of its ink I = (x + 1)/2:

        slant = −μ11 / μ02       (how far x moves per row: > 0 when the top leans right;
                                  the minus because rows count downwards)
        width = sqrt((μ20 − μ11²/μ02) / μ00)
                                 (the horizontal spread of the ink within each row's
                                  line of slant, i.e. with the slant taken out, so that
                                  a leaning 1 does not count as a wide one)

    with μpq = Σ (x − x̄)^p (y − ȳ)^q I over the pixels (x: column, y: row)."""
    ink = (np.asarray(images, dtype=np.float64).reshape(-1, 28, 28) + 1) / 2
    ys, xs = np.mgrid[0:28, 0:28].astype(np.float64)
    m00 = ink.sum(axis=(1, 2)) + 1e-12
    x_bar = (ink * xs).sum(axis=(1, 2)) / m00
    y_bar = (ink * ys).sum(axis=(1, 2)) / m00
    dx = xs[None] - x_bar[:, None, None]
    dy = ys[None] - y_bar[:, None, None]
    mu11 = (ink * dx * dy).sum(axis=(1, 2))
    mu02 = (ink * dy * dy).sum(axis=(1, 2)) + 1e-12
    mu20 = (ink * dx * dx).sum(axis=(1, 2))
    slant = -mu11 / mu02
    width = np.sqrt(np.maximum(mu20 - mu11 ** 2 / mu02, 0) / m00)
    return slant, width


def spearman_rows(measures):
    """Spearman's ρ between the positions 0…S−1 and each row of ``measures``
    (n, S): the Pearson correlation of the ranks (ties share their mean rank).
    A row that does not change at all has ρ = 0."""
    measures = np.asarray(measures, dtype=np.float64)
    ranks = _ranks(measures)
    a = np.arange(measures.shape[1], dtype=np.float64)
    a -= a.mean()
    ranks -= ranks.mean(axis=1, keepdims=True)
    denom = np.sqrt((ranks ** 2).sum(axis=1) * (a ** 2).sum())
    return np.divide(ranks @ a, denom, out=np.zeros(len(measures)), where=denom > 0)


def _ranks(rows):
    order = np.argsort(rows, axis=1, kind="stable")
    ranks = np.empty_like(rows)
    np.put_along_axis(ranks, order, np.arange(rows.shape[1], dtype=np.float64)[None], axis=1)
    for i, row in enumerate(rows):                      # ties: the mean of their ranks
        values, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        if len(values) < len(row):
            sums = np.bincount(inverse, weights=ranks[i])
            ranks[i] = (sums / counts)[inverse]
    return ranks


def sweep_inputs(model, code, values, rows):
    """G's inputs for a sweep of one code: each row of ``rows`` (G inputs, e.g. from
    ``model.inputs`` or ``model.sample_noise``: they fix z and the other codes) is
    repeated once per value of ``code`` ("c1", "c2", …), with that code set to the
    value. Returns (len(rows)·len(values), input_size), row by row, so that
    ``image_grid(model.generate(out), n_cols=len(values))`` shows row r of ``rows``
    swept from left to right and nothing but the swept code changes along a row."""
    rows = np.asarray(rows, dtype=model.dtype)
    if rows.ndim != 2 or rows.shape[1] != model.input_size:
        raise ValueError(f"rows must be G inputs of shape (n, {model.input_size}), got {rows.shape}")
    values = np.asarray(values, dtype=np.float64).ravel()
    out = np.repeat(rows, len(values), axis=0)
    for k, value in enumerate(values):              # out[k::S] is every row's k-th column
        model.set_codes(out[k::len(values)], {code: value})
    return out


def code_sweeps(model, n_z=300, values=SWEEP, seed=0):
    """For each continuous code: sweep it over ``values`` for n_z fixed draws of
    z, c1 and the other codes. Returns {"c2": {...}, "c3": {...}} with, per code,
    the mean Spearman ρ with slant and with width over the n_z draws, their
    standard errors, and the mean slant and width at each value (the curves, with
    their standard errors over the n_z draws)."""
    rng = np.random.default_rng(seed)
    base = model.sample_noise(n_z, rng)
    result = {}
    for name in model.code_names:
        if name == "c1" and model.config.n_cat:
            continue                                           # the categorical code
        g_in = sweep_inputs(model, name, values, base)         # (n_z·S, input): z fixed per row
        slant, width = slant_and_width(_generate(model, g_in))
        entry = {"values": list(map(float, values))}
        for measure_name, measure in (("slant", slant), ("width", width)):
            rows = measure.reshape(n_z, len(values))
            rho = spearman_rows(rows)
            entry[measure_name] = float(rho.mean())
            entry[f"{measure_name}_se"] = float(rho.std(ddof=1) / np.sqrt(n_z))
            entry[f"{measure_name}_curve"] = rows.mean(axis=0).tolist()
            entry[f"{measure_name}_curve_se"] = (rows.std(axis=0, ddof=1) / np.sqrt(n_z)).tolist()
        result[name] = entry
    return result


def digit_change_rate(model, code, values=TRAINING_RANGE, n_z=500, seed=0, evaluator=None):
    """The share of n_z draws of z and the other codes for which sweeping ``code``
    over ``values`` changes the digit the evaluator reads (more than one digit along
    the sweep)."""
    evaluator = evaluator or load_evaluator()
    base = model.sample_noise(n_z, np.random.default_rng(seed))
    g_in = sweep_inputs(model, code, values, base)
    digits = evaluator.predict(_generate(model, g_in)).reshape(n_z, len(values))
    return float(np.mean(np.any(digits != digits[:, :1], axis=1)))


def evaluate_codes(model, seed=0, evaluator=None, n_per_value=1000, n_z=300, n_z_digits=500):
    """c1 accuracy, the continuous codes' sweeps and their digit-change rates over
    [−1, 1] ("digit_change") and [−2, 2] ("digit_change_wide"), in one dict."""
    out = {}
    if model.config.n_cat >= 2:
        out["c1"] = c1_accuracy(model, n_per_value, seed, evaluator)
    if model.config.n_cont:
        out.update(code_sweeps(model, n_z, seed=seed))
        evaluator = evaluator or load_evaluator()
        for name, entry in out.items():
            if name != "c1" or not model.config.n_cat:
                for key, values in (("digit_change", TRAINING_RANGE), ("digit_change_wide", SWEEP)):
                    entry[key] = digit_change_rate(model, name, values, n_z_digits, seed, evaluator)
    return out
