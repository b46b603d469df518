"""The training loop: epochs of shuffled mini-batches, a progress bar,
per-iteration history, snapshots from a fixed noise batch, checkpoints."""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .files import atomic_write
from .plot import image_grid
from .threads import blas_threads

HISTORY_COLUMNS = ("epoch", "iteration", "d_loss", "g_loss", "d_real", "d_fake")


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite, or the run clearly blew up."""


# A run that has blown up, caught before it reaches NaN (e.g. --lr 1e3: G losses
# of 5.6e16 and one image for every input). In the book's runs (GAN and CGAN,
# 60 epochs, 56,220 steps each, seed 0) the largest losses were G 3.12 and D 0.83
# (GAN), G 2.94 and D 1.20 (CGAN), and the batch mean of D(G(z)) never fell below
# 0.078; at 5 times the book's learning rate the largest loss was 8.1 (at 50 times:
# G 201, D 96, a broken run). Neither rule comes near a working run; the tests
# replay the book's stored histories through it.
LOSS_BOUND = 100.0    # any loss above it: D's logits are in the hundreds
STUCK_G_LOSS = 20.0   # G's loss above it (D(G(z)) about e^-20 = 2e-9) ...
STUCK_STEPS = 200     # ... for this many steps in a row: D rejects every fake, G is lost


class DivergenceWatch:
    """Stops a run that has clearly blown up, with TrainingDiverged: one loss
    beyond LOSS_BOUND, or G's loss above STUCK_G_LOSS for STUCK_STEPS steps."""

    def __init__(self):
        self.stuck = 0

    def check(self, iteration, losses):
        d_loss, g_loss = losses[0], losses[1]
        advice = "Lower the learning rates (lr_d, lr_g) or check the input data."
        if max(abs(d_loss), abs(g_loss)) > LOSS_BOUND:
            raise TrainingDiverged(
                f"training diverged at iteration {iteration}: the losses blew up (D loss "
                f"{d_loss:.4g}, G loss {g_loss:.4g}; in the book's runs both stay below 4). {advice}")
        self.stuck = self.stuck + 1 if g_loss > STUCK_G_LOSS else 0
        if self.stuck >= STUCK_STEPS:
            raise TrainingDiverged(
                f"training diverged at iteration {iteration}: G's loss has stayed above "
                f"{STUCK_G_LOSS:g} for {STUCK_STEPS} steps (now {g_loss:.4g}, D(G(z)) {losses[3]:.3g}): "
                f"D rejects every fake and G no longer learns. {advice}")


@dataclass
class History:
    """Per-iteration records and the snapshot grids, by epoch."""

    records: list = field(default_factory=list)     # rows of HISTORY_COLUMNS
    snapshots: dict = field(default_factory=dict)   # epoch → uint8 grid image
    seconds: float = 0.0                            # training time, snapshots excluded

    def column(self, name):
        return np.array([row[HISTORY_COLUMNS.index(name)] for row in self.records])

    def to_csv(self, path):
        """Write the records as CSV, through a temporary file and a rename (atomic)."""
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.write(",".join(HISTORY_COLUMNS) + "\n")
            for row in self.records:
                f.write(f"{row[0]},{row[1]},{row[2]:.6g},{row[3]:.6g},{row[4]:.6g},{row[5]:.6g}\n")


def fixed_inputs(model, n_per_row=10, seed=1234):
    """The fixed noise batch (and labels) that every snapshot is drawn from.

    GAN: 10 × 10 samples. CGAN: row r holds digit r, columns differ in z.
    InfoGAN: row r has the code c1 = r (continuous codes 0).
    """
    rng = np.random.default_rng(seed)
    if hasattr(model, "code_grid"):  # InfoGAN: row r has c1 = r
        return model.code_grid(rng, n_per_row), None
    n_rows = model.config.n_classes or 10
    z = model.sample_noise(n_rows * n_per_row, rng)
    labels = np.repeat(np.arange(n_rows), n_per_row) if model.conditional else None
    return z, labels


def snapshot(model, z, labels, n_cols=10):
    """A uint8 grid of G's images for the fixed z (and labels)."""
    return image_grid(model.generate(z, labels), n_cols=n_cols)


def check_finite(model, iteration, losses, weights=False):
    """Stop with a clear error once a loss (or, with weights=True, a weight)
    is NaN or infinite. Non-finite weights make the next losses non-finite,
    so checking the cheap losses every step and the weights once an epoch
    catches every divergence."""
    if all(math.isfinite(v) for v in losses) and (not weights or (
            np.isfinite(model.D.flat_params).all() and np.isfinite(model.G.flat_params).all())):
        return
    what = "D's weights" if not np.isfinite(model.D.flat_params).all() else \
        "G's weights" if not np.isfinite(model.G.flat_params).all() else "a loss"
    raise TrainingDiverged(
        f"training diverged at iteration {iteration}: {what} became NaN or infinite "
        f"(D loss {losses[0]:.4g}, G loss {losses[1]:.4g}). "
        "Lower the learning rates (lr_d, lr_g) or check the input data.")


def check_training_data(model, images, labels=None):
    """(images, labels) as train() uses them, or a ValueError that says what is
    wrong: a single image or 28×28 arrays, 0–255 pixels (uint8, or floats),
    labels that are missing, unwanted, or not classes 0…k−1."""
    if model.conditional and labels is None:
        raise ValueError("a CGAN is trained on images AND their labels: pass labels=")
    if not model.conditional and labels is not None:
        raise ValueError(f"a {model.name.upper()} is trained on images alone: leave out labels")
    raw = np.asarray(images)
    if raw.ndim != 2 or raw.shape[1] != 784:
        raise ValueError(f"images must have shape (N, 784), got {raw.shape}"
                         + ("; a single image x is x[None]" if raw.shape == (784,) else "")
                         + ("; flatten 28×28 images with x.reshape(len(x), 784)"
                            if raw.shape[-2:] == (28, 28) else ""))
    if not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(f"images are {raw.dtype}, but G draws pixels in [-1, 1]: convert 0–255 "
                         "pixels with npgan.data.to_unit_range(images), i.e. x / 127.5 - 1")
    images = np.asarray(raw, dtype=model.dtype)
    finite = np.isfinite(images).all(axis=1)
    if not finite.all():   # refused here: one step on them would make every weight NaN
        raise ValueError(f"images hold NaN or infinite values (row {int(np.argmin(finite))} first); "
                         "remove or repair those rows")
    low, high = (images.min(), images.max()) if images.size else (0, 0)
    if low < -1.001 or high > 1.001:
        raise ValueError(f"images must hold pixels in [-1, 1] (G's tanh range), these range over "
                         f"[{low:.4g}, {high:.4g}]" + (": scale 0–255 pixels by x / 127.5 - 1"
                                                      if high > 2 else ""))
    if model.conditional:
        from .gan import check_labels

        labels = check_labels(labels, model.config.n_classes, len(images))
    return images, labels


def train(model, images, labels=None, epochs=1, seed=0, snapshot_epochs=(), progress=True,
          on_epoch_end=None, threads=None):
    """Train ``model`` on ``images`` (N, 784) in [-1, 1].

    Each epoch visits every image once, in an order drawn from
    ``np.random.default_rng(seed)``; the last incomplete batch is dropped.
    Snapshots are taken before training (epoch 0), at ``snapshot_epochs`` and
    after the last epoch. ``on_epoch_end(epoch, history)`` runs after each
    epoch (e.g. to save a checkpoint); a list of such callbacks runs in order.
    ``threads``: BLAS threads for the matrix multiplies (default: npgan.threads'
    rules — one thread, unless NPGAN_THREADS or the user's own BLAS variables say
    otherwise). Returns a ``History``.
    """
    with blas_threads(threads):
        return _train(model, images, labels, epochs, seed, snapshot_epochs, progress,
                      on_epoch_end)


def _checked_epochs(snapshot_epochs):
    """The snapshot epochs as a set of whole numbers ≥ 0 (None: none but the first
    and the last), or a ValueError naming what is wrong."""
    if snapshot_epochs is None:
        return set()
    if isinstance(snapshot_epochs, (str, bytes)) or not hasattr(snapshot_epochs, "__iter__"):
        raise ValueError(f"snapshot_epochs must be a list of epochs such as [0, 5, 20], got {snapshot_epochs!r}")
    epochs = list(snapshot_epochs)
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, numbers.Integral) or e < 0:
            raise ValueError(f"snapshot_epochs must be whole numbers ≥ 0, got {e!r}")
    return set(epochs)


def _train(model, images, labels, epochs, seed, snapshot_epochs, progress, on_epoch_end):
    callbacks = list(on_epoch_end) if isinstance(on_epoch_end, (list, tuple)) else \
        [on_epoch_end] if on_epoch_end is not None else []
    for name, value, low in (("epochs", epochs, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    snapshot_epochs = _checked_epochs(snapshot_epochs)
    images, labels = check_training_data(model, images, labels)
    B = model.config.batch_size
    steps = len(images) // B
    if steps == 0:
        raise ValueError(f"{len(images)} images are fewer than one batch of {B}")
    order_rng = np.random.default_rng(seed)
    z_fixed, labels_fixed = fixed_inputs(model)
    wanted = set(snapshot_epochs) | {0, epochs}
    history = History()
    if 0 in wanted:
        history.snapshots[0] = snapshot(model, z_fixed, labels_fixed)
    batch = np.empty((B, images.shape[1]), dtype=model.dtype)
    total = epochs * steps
    decay_steps = round(getattr(model.config, "lr_decay", 0.0) * total)
    watch = getattr(model, "divergence_watch", DivergenceWatch)()   # a WGAN brings its own rule
    last_good = [0, _state_of(model)]   # restored if the run diverges: no NaN weights stay behind
    try:
        _epochs(model, images, labels, epochs, order_rng, z_fixed, labels_fixed, wanted, history,
                batch, total, decay_steps, watch, callbacks, progress, last_good)
    except TrainingDiverged as err:
        epoch, state = last_good
        _restore(model, state)
        when = f"after epoch {epoch}" if epoch else "before this training"
        raise TrainingDiverged(f"{err} The model's weights are restored to those {when}.") from None
    return history


def _state_of(model):
    """Copies of everything a training step changes: weights, layer statistics
    and the optimizers' state (the average of G's weights too)."""
    nets = [model.G, model.D] + ([model.G_average.net] if getattr(model, "G_average", None) else [])
    state = [(net.flat_params, net.flat_params.copy()) for net in nets]
    state += [(net.flat_buffers, net.flat_buffers.copy()) for net in nets if net.flat_buffers.size]
    opts = (model.opt_g, model.opt_d)
    state += [(value, value.copy()) for opt in opts for key, value in opt.state().items() if key != "t"]
    return state, [getattr(opt, "t", None) for opt in opts], getattr(model.G_average, "updates", None)


def _restore(model, saved):
    state, steps, updates = saved
    for array, copy in state:
        array[...] = copy
    for opt, t in zip((model.opt_g, model.opt_d), steps):
        if t is not None:
            opt.t = t
    if updates is not None:
        model.G_average.updates = updates


def _epochs(model, images, labels, epochs, order_rng, z_fixed, labels_fixed, wanted, history,
            batch, total, decay_steps, watch, callbacks, progress, last_good):
    import time

    B, steps, iteration = batch.shape[0], len(images) // batch.shape[0], 0
    for epoch in range(1, epochs + 1):
        order = order_rng.permutation(len(images))
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{epochs}", disable=not progress,
                   leave=epoch == epochs, mininterval=0.5)
        start = time.perf_counter()
        for step in bar:
            idx = order[step * B:(step + 1) * B]
            np.take(images, idx, axis=0, out=batch)
            if decay_steps:   # the last decay_steps steps: rates fall linearly, to 1/decay_steps of them
                model.scale_learning_rates(min(1.0, (total - iteration) / decay_steps))
            losses = model.train_step(batch, None if labels is None else labels[idx])
            iteration += 1
            check_finite(model, iteration, losses)
            watch.check(iteration, losses)
            history.records.append((epoch, iteration, *losses))
            if step % 50 == 0 or step == steps - 1:
                bar.set_postfix(D_loss=f"{losses[0]:.3f}", G_loss=f"{losses[1]:.3f}",
                                Dx=f"{losses[2]:.2f}", DGz=f"{losses[3]:.2f}", refresh=False)
        history.seconds += time.perf_counter() - start
        check_finite(model, iteration, losses, weights=True)
        last_good[:] = epoch, _state_of(model)
        if epoch in wanted:
            history.snapshots[epoch] = snapshot(model, z_fixed, labels_fixed)
        for callback in callbacks:
            callback(epoch, history)
    return history


def notebook_progress(epochs, steps_per_epoch):
    """An ``on_epoch_end`` callback for Jupyter: one line of text, rewritten
    after every epoch, with a progress bar and the epoch's mean D loss, G loss,
    D(x) and D(G(z)). (tqdm's widget bar would store its state in the saved
    notebook and load scripts from the internet in the built book.)"""
    import time

    from IPython.display import Pretty, display

    status = display(Pretty("训练开始……"), display_id=True)
    start = time.perf_counter()

    def report(epoch, history):
        d_loss, g_loss, d_real, d_fake = np.mean(
            [row[2:] for row in history.records[-steps_per_epoch:]], axis=0)
        bar = tqdm.format_meter(epoch, epochs, time.perf_counter() - start, ncols=64,
                                prefix="训练", unit="轮")
        status.update(Pretty(f"{bar}\n这一轮的平均：D 的损失 {d_loss:.3f}，G 的损失 {g_loss:.3f}，"
                             f"D(x) {d_real:.2f}，D(G(z)) {d_fake:.2f}"))

    return report
