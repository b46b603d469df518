"""Shared helpers of the npgan test suite.

Helpers reach the tests through the ``gc`` fixture (a namespace), not through
``import conftest``, so that another conftest.py in a sub-folder cannot clash.

Every gradient check records its largest error with ``measured(name, value)``;
the values are printed in pytest's terminal summary ("measured errors").
"""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

# The tests multiply small matrices, where a second BLAS thread gains nothing;
# on a shared 2-core machine it costs a lot: measured under load, a (32×784)·(784×64)
# float32 matmul took 27 ms with 2 OpenBLAS threads and 0.18 ms with 1. Set before
# NumPy (and torch) load their thread pools; the CLI subprocesses inherit it.
# Export OPENBLAS_NUM_THREADS / OMP_NUM_THREADS yourself to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from npgan.layers import Dropout, Linear  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_MEASURED = {}


# ---------------------------------------------------------------- gradient checks

def fd_gradient(f, theta, h=1e-4):
    """Numerical gradient of the scalar f() w.r.t. the array ``theta`` (changed in
    place and restored), by the fourth-order central difference

        f'(x) ≈ [-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)] / (12 h),

    whose error in float64 is about 1e-12 for the losses used here (the plain
    two-point difference is limited to about 1e-10 by rounding)."""
    flat = theta.reshape(-1)  # a view: theta must be contiguous
    assert np.shares_memory(flat, theta)
    grad = np.empty(flat.size, dtype=np.float64)
    for i in range(flat.size):
        old = flat[i]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            flat[i] = old + step
            values.append(f())
        flat[i] = old
        grad[i] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return grad.reshape(theta.shape)


def rel_error(actual, expected, floor=1e-3):
    """Largest element-wise relative error max_i |a_i - e_i| / max(|a_i|, |e_i|, s).

    s = floor · max|e| keeps the measure meaningful for elements that are zero
    or tiny compared with the rest of the same array (e.g. the weights of a
    CGAN's one-hot input for a digit absent from the batch, whose gradient is
    exactly 0): those are compared at 0.1 % of the array's scale."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = floor * np.abs(expected).max()
    denom = np.maximum(np.maximum(np.abs(actual), np.abs(expected)), scale)
    denom[denom == 0] = 1.0  # both exactly zero: error 0
    return float((np.abs(actual - expected) / denom).max())


def measured(name, value):
    """Record an error for the terminal summary (the largest per name)."""
    _MEASURED[name] = max(value, _MEASURED.get(name, 0.0))


# ---------------------------------------------------------------- reference networks

def linears(net):
    return [layer for layer in net.layers if isinstance(layer, Linear)]


def dropouts(net):
    return [layer for layer in net.layers if isinstance(layer, Dropout)]


def unpack(theta, shapes, projection_classes=0):
    """Flat parameter vector → [(W, b), …] views, in Sequential's layout; with
    ``projection_classes`` = k, the last layer is a ProjectionLogit and its class
    vectors V (k, F) follow its b: [(W, b), …, (W, b, V)]."""
    out, start = [], 0
    for n_in, n_out in shapes:
        W = theta[start:start + n_in * n_out].reshape(n_in, n_out)
        start += n_in * n_out
        b = theta[start:start + n_out]
        start += n_out
        out.append((W, b))
    if projection_classes:
        n_in = shapes[-1][0]
        out[-1] += (theta[start:start + projection_classes * n_in].reshape(projection_classes, n_in),)
        start += projection_classes * n_in
    assert start == theta.size
    return out


def ref_mlp(theta, shapes, x, slope, output=None, masks=None, signs=None, batch_std=0,
            projection=None):
    """An independent forward pass, written from the formulas: h = act(x W + b)
    (times the dropout mask) for the hidden layers, then tanh or nothing.
    slope = 0 is ReLU, slope > 0 leaky ReLU. If ``signs`` is a list, the
    hidden units' sign patterns (which side of the kink) are appended to it.
    ``batch_std`` = g > 0: before the last layer each row gets the mean over
    features of the standard deviation over its group of g rows (batchstd.py).
    ``projection``: the rows' one-hot labels Y (N, k) for a projection D, whose
    logit is h w + b + Σ_f h_f (Y V)_f (projection.py)."""
    params = unpack(theta, shapes, 0 if projection is None else projection.shape[1])
    h = x
    for i, (W, b, *V) in enumerate(params):
        if batch_std and i == len(params) - 1:
            groups = h.reshape(-1, batch_std, h.shape[1])
            spread = np.sqrt(groups.var(axis=1) + 1e-8).mean(axis=1)
            h = np.hstack([h, np.repeat(spread, batch_std)[:, None]])
        h_in = h
        h = h @ W + b
        if V:
            h = h + np.sum(h_in * (projection @ V[0]), axis=1, keepdims=True)
        if i < len(params) - 1:
            if signs is not None:
                signs.append(h > 0)
            h = np.where(h > 0, h, slope * h)
            if masks is not None:
                h = h * masks[i]
        elif output == "tanh":
            h = np.tanh(h)
    return h


class KinkWatch:
    """Finite differences of a ReLU network are only valid while no hidden unit
    crosses its kink. ``check(signs)`` compares a loss evaluation's sign
    patterns with the first one it saw and counts the evaluations that differ."""

    def __init__(self):
        self.reference = None
        self.crossings = 0

    def check(self, signs):
        if self.reference is None:
            self.reference = [s.copy() for s in signs]
        elif any(not np.array_equal(a, b) for a, b in zip(self.reference, signs)):
            self.crossings += 1


def softplus(z):
    """log(1 + e^z), exact for any z: -log σ(-z)."""
    return np.logaddexp(0.0, z)


def record_train_step(model, x_real, labels=None, d_rows=None):
    """Run model.train_step with the optimizers' steps wrapped, and return what
    the step used and produced:

    thD0/thG0 (weights before), gD/gG (the flat gradients handed to each
    optimizer), thD1 (D after its update), thD_at_g (D's weights when G was
    updated), d_in (D's input of the D step: real rows on top), g_in (G's input,
    z and the fake labels' one-hot), masks_d/masks_g (D's dropout masks in the
    D and the G step, or None), the returned losses, and gD_end/thD_end (D's
    gradients and weights after the whole step). ``d_rows``: the rows of D's pass
    in the D step when it is not 2B (a semi-supervised InfoGAN's labelled rows)."""
    rec = {"thD0": model.D.flat_params.copy(), "thG0": model.G.flat_params.copy()}
    step_d, step_g = model.opt_d.step, model.opt_g.step

    def wrapped_d():
        rec["gD"] = model.D.flat_grads.copy()
        step_d()
        rec["thD1"] = model.D.flat_params.copy()

    def wrapped_g():
        rec["gG"] = model.G.flat_grads.copy()
        rec["thD_at_g"] = model.D.flat_params.copy()
        rec["thG_at_g"] = model.G.flat_params.copy()
        step_g()

    model.opt_d.step, model.opt_g.step = wrapped_d, wrapped_g
    try:
        rec["losses"] = model.train_step(x_real, labels)
    finally:
        model.opt_d.step, model.opt_g.step = step_d, step_g
    cfg, B = model.config, x_real.shape[0]
    def buffer(name, rows, owner=model, batch_axis=0):   # owner's work buffer of that name for this batch size
        (found,) = [v for (n, shape, _), v in owner._buffers.items()
                    if n == name and shape[batch_axis] == rows]
        return np.moveaxis(found, batch_axis, 0).copy()

    d_rows = d_rows or 2 * B
    rec["d_in"], rec["g_in"] = buffer("d_in", d_rows), buffer("g_in", B)
    rec["gD_end"] = model.D.flat_grads.copy()
    rec["thD_end"] = model.D.flat_params.copy()
    rec["thG_end"] = model.G.flat_params.copy()
    drops = dropouts(model.D)
    if drops and cfg.d_dropout > 0:   # (B, features) masks, or (B, C, H, W) after a conv
        # a conv D built batch-last (conv.py) keeps its maps, and so the masks of
        # the dropouts before its Flatten, as (C, H, W, B); those after it are (B, n)
        last = any(getattr(layer, "batch_last", False) for layer in model.D.layers)
        axes = [-1 if last and any(len(shape) == 4 for (_, shape, _) in d._buffers) else 0
                for d in drops]
        rec["masks_d"] = [buffer("mask", d_rows, d, a) for d, a in zip(drops, axes)]
        rec["masks_g"] = [buffer("mask", B, d, a) for d, a in zip(drops, axes)]
    else:
        rec["masks_d"] = rec["masks_g"] = None
    rec["shapes_d"] = [layer.W.shape for layer in model.D.layers if hasattr(layer, "W")]
    rec["shapes_g"] = [layer.W.shape for layer in linears(model.G)]
    rec["slope"] = cfg.leaky_slope if cfg.activation == "leaky_relu" else 0.0
    return rec


@pytest.fixture
def gc():
    """The helpers above, as one namespace."""
    return SimpleNamespace(
        fd_gradient=fd_gradient, rel_error=rel_error, measured=measured, linears=linears,
        dropouts=dropouts, unpack=unpack, ref_mlp=ref_mlp, softplus=softplus,
        KinkWatch=KinkWatch,
        record_train_step=record_train_step)


# ---------------------------------------------------------------- data and processes

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def real_mnist_dir():
    from npgan.data import data_dir
    return data_dir() / "mnist"


@pytest.fixture
def mnist_dir():
    """The real MNIST cache folder; the test is skipped (with the reason) if it is incomplete."""
    folder = real_mnist_dir()
    missing = [n for n in MNIST_FILES if not (folder / n).is_file()]
    if missing:
        pytest.skip(f"real MNIST not in {folder} (missing {', '.join(missing)}): run 'make data'")
    return folder


@pytest.fixture
def run_cli(tmp_path):
    """Run ``python -m npgan ARGS`` with this interpreter (the venv's); returns
    CompletedProcess with text stdout/stderr."""
    import subprocess

    def run(*args, timeout=300, env=None, cwd=None):
        full_env = dict(os.environ, MPLBACKEND="Agg")
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "npgan", *map(str, args)],
                              capture_output=True, text=True, timeout=timeout,
                              env=full_env, cwd=cwd or tmp_path)
    return run


def pytest_terminal_summary(terminalreporter):
    if not _MEASURED:
        return
    terminalreporter.section("measured errors (largest per check)")
    for name in sorted(_MEASURED):
        terminalreporter.write_line(f"{name:60s} {_MEASURED[name]:.3e}")


@pytest.fixture
def train_one_epoch(run_cli, mnist_dir, tmp_path):
    """``npgan train --model MODEL --epochs 1 --subset N`` on real MNIST into tmp_path/run:
    checks the exit code and the line that counts the steps; returns the run folder."""
    def train(model, subset, steps):
        run = tmp_path / "run"
        result = run_cli("--data-dir", mnist_dir.parent, "train", "--model", model, "--epochs", "1",
                         "--subset", subset, "--out", run, "--quiet")
        assert result.returncode == 0, result.stderr
        assert f"trained {model.upper()} for 1 epochs ({steps} steps each)" in result.stdout
        return run
    return train
