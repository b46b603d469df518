"""Checkpoints: one .npz holding the weights, the optimizer state and the
config as JSON. Loaded with allow_pickle=False, written atomically."""

import json
import zipfile
from pathlib import Path

import numpy as np

from .files import atomic_write
from . import models

FORMAT = "npgan-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing or unreadable."""


def save(model, path, epoch=None, seed=None, train_seconds=None):
    """Write ``model`` to ``path`` (.npz) through a temporary file and a rename.
    ``train_seconds``: the training time so far, kept in the meta (21.6 plots FD against it)."""
    path = Path(path)
    meta = {"format": FORMAT, "model": model.name, "config": json.loads(model.config.to_json()),
            "epoch": epoch, "seed": seed}
    if train_seconds is not None:
        meta["train_seconds"] = float(train_seconds)
    nets = _networks(model)
    if "G_average" in nets:   # the average of G's weights (average.py), which samples use
        meta["average_updates"] = model.G_average.updates
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
              **{name: net.flat_params for name, (net, _) in nets.items()}}
    for name, (net, _) in nets.items():
        if net.flat_buffers.size:   # layer state that is not trained: BatchNorm's running statistics
            arrays[f"{name}_buffers"] = net.flat_buffers
    for net, opt in (("G", model.opt_g), ("D", model.opt_d)):
        for key, value in opt.state().items():
            arrays[f"opt_{net}_{key}"] = value
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


MAX_META_BYTES = 1_000_000   # the JSON of meta; a real one is about 600 bytes


class _Refused(Exception):
    """A checkpoint that is well-formed but must not be used; its own message."""


def _header(data, key):
    """(shape, dtype) of the array ``key`` in an open NpzFile, from its .npy
    header alone: nothing is read (or allocated) before the size is known."""
    if key not in data.files:
        raise KeyError(f"no array {key!r}")
    with data.zip.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def _read(data, key, shape, dtype, what, path):
    """The array ``key``, read only once its header shows ``shape`` and ``dtype``;
    weights and optimizer state must be finite."""
    stored_shape, stored_dtype = _header(data, key)
    if stored_shape != tuple(shape) or stored_dtype != np.dtype(dtype):
        raise ValueError(f"{what} are stored as an array of shape {stored_shape} and type "
                         f"{stored_dtype}, the config needs shape {tuple(shape)} and type {np.dtype(dtype)}")
    array = data[key]
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise _Refused(f"{path}: {what} hold NaN or infinite values (the training had diverged "
                       "when this was saved); train again with lower learning rates")
    return array


def _open_checked(path):
    """An open binary file for ``path``, or CheckpointError saying what it is instead."""
    import os
    import stat

    from .files import kind_of

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; give the .npz file in it, "
                              f"such as {path / 'checkpoint.npz'}")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is {kind_of(mode)}, not a checkpoint file")
    try:
        return open(path, "rb")
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read it ({err.strerror})") from None


def load(path):
    """(model, meta) from a checkpoint written by ``save``.

    Everything is checked before it is used: the file is an .npz, the config
    passes its family's validate() (types, ranges, size) before a model is
    built, every array has the shape and type the config needs before it is
    read, and weights and optimizer state are finite."""
    path = Path(path)
    with _open_checked(path) as f:
        try:
            if f.read(4) != b"PK\x03\x04":   # else NumPy's message is about pickles
                raise ValueError("it is not an .npz file (an .npz is a zip archive)")
            f.seek(0)
            with np.load(f, allow_pickle=False) as data:
                return _load(data, path)
        except _Refused as err:
            raise CheckpointError(str(err)) from None
        except RecursionError:   # e.g. 200 KB of "[": json.loads recurses once per bracket
            raise CheckpointError(f"{path}: not a valid npgan checkpoint (its meta JSON is nested "
                                  "too deeply); train again to write a new one") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError,
                zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: not a valid npgan checkpoint ({err}); "
                                  "train again to write a new one") from None


def _load(data, path):
    meta_shape, meta_dtype = _header(data, "meta")
    if len(meta_shape) != 1 or meta_dtype != np.uint8 or meta_shape[0] > MAX_META_BYTES:
        raise ValueError(f"meta is {meta_shape} {meta_dtype}, expected at most {MAX_META_BYTES} bytes of JSON")
    meta = json.loads(bytes(data["meta"]).decode())
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise ValueError("meta is not a JSON object with a config")
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    # files from before InfoGAN and DCGAN have no "model": GAN or CGAN
    name = meta.get("model") or ("cgan" if meta["config"].get("n_classes") else "gan")
    config = models.family(name).config_class.from_json(json.dumps(meta["config"]))  # validated
    model = models.build(config, seed=0)
    for name, (net, whose) in _networks(model).items():
        net.flat_params[...] = _read(data, name, net.flat_params.shape, net.flat_params.dtype,
                                     f"{whose} weights", path)
        if net.flat_buffers.size:
            net.flat_buffers[...] = _read(data, f"{name}_buffers", net.flat_buffers.shape,
                                          net.flat_buffers.dtype, f"{whose} running statistics", path)
    if getattr(model, "G_average", None) is not None:
        updates = meta.get("average_updates")
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ValueError(f"average_updates is {updates!r}, expected a step count ≥ 0")
        model.G_average.updates = updates
    for net_name, opt in (("G", model.opt_g), ("D", model.opt_d)):
        for key, value in opt.state().items():
            what = f"{net_name}'s optimizer state ({key})"
            if key == "t":
                step = _read(data, f"opt_{net_name}_{key}", (), np.int64, what, path)
                if step < 0:
                    raise ValueError(f"{what} is {step}, a negative step count")
                opt.t = int(step)
            else:
                value[...] = _read(data, f"opt_{net_name}_{key}", value.shape, value.dtype, what, path)
    return model, meta


def _networks(model):
    """name in the file → (network, whose for messages): G, D and, when the config
    keeps one (ema_decay > 0), the average of G's weights."""
    nets = {"G": (model.G, "G's"), "D": (model.D, "D's")}
    if getattr(model, "G_average", None) is not None:
        nets["G_average"] = (model.G_average.net, "the average of G's")
    return nets


def run_dir(name):
    """Where the book's runs keep their checkpoints: $NPGAN_DATA/runs/<name>
    (the model notebooks write there; 21.4 evaluates what they wrote)."""
    from .data import data_dir

    return data_dir() / "runs" / name


def epoch_saver(model, folder, epochs, every=10, seed=None):
    """An ``on_epoch_end`` callback for ``train`` that keeps a checkpoint
    ``epoch_NNN.npz`` every ``every`` epochs and after the last of ``epochs``,
    and the history so far as ``history.csv``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def keep(epoch, history):
        if epoch % every == 0 or epoch == epochs:
            save(model, folder / f"epoch_{epoch:03d}.npz", epoch=epoch, seed=seed,
                 train_seconds=history.seconds)
            history.to_csv(folder / "history.csv")

    return keep


def book_checkpoints(model_name, epochs, subset=None, every=10, seed=0, run_name=None,
                     progress=True):
    """{epoch: path} of the checkpoints of the book's run of "gan" or "cgan".

    The notebooks of 21.2 and 21.3 leave these behind in the run folder
    "book-<model>" (or "book-<model>-subset<N>" for a quick run on the first N
    images), through ``bookruns.book_run``; this asks it for the same run, so that
    21.4 can always evaluate it: found there if it was trained with the book's
    recipe, these epochs and seed and a checkpoint every ``every`` epochs, trained
    now otherwise. Like book_run it never replaces a finished run of other epochs
    or another seed (bookruns.RunExists), and a run being trained by another
    process is waited for. ``run_name`` must be the default name, if given;
    ``progress`` is kept for callers of old and has no effect."""
    from . import bookruns

    folder = bookruns.run_folder(model_name, subset=subset)
    if run_name is not None and run_name != folder.name:
        raise ValueError(f"run_name must be {folder.name!r}, the folder book_run keeps this run in, "
                         f"got {run_name!r}")
    bookruns.book_run(model_name, epochs=epochs, subset=subset, seed=seed, every=every)
    return {int(p.stem.split("_")[1]): p for p in sorted(folder.glob("epoch_*.npz"))}
