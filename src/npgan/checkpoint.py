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


def save(model, path, epoch=None, seed=None):
    """Write ``model`` to ``path`` (.npz) through a temporary file and a rename."""
    path = Path(path)
    meta = {"format": FORMAT, "model": model.name, "config": json.loads(model.config.to_json()),
            "epoch": epoch, "seed": seed}
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
              "G": model.G.flat_params, "D": model.D.flat_params}
    for net in ("G", "D"):   # layer state that is not trained: BatchNorm's running statistics
        buffers = getattr(getattr(model, net), "flat_buffers", None)
        if buffers is not None and buffers.size:
            arrays[f"{net}_buffers"] = buffers
    for net, opt in (("G", model.opt_g), ("D", model.opt_d)):
        for key, value in opt.state().items():
            arrays[f"opt_{net}_{key}"] = value
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def load(path):
    """(model, meta) from a checkpoint written by ``save``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            # files from before InfoGAN and DCGAN have no "model": GAN or CGAN
            name = meta.get("model") or ("cgan" if meta["config"].get("n_classes") else "gan")
            config_class = models.family(name).config_class
            model = models.build(config_class(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in meta["config"].items()}), seed=0)
            for net_name in ("G", "D"):
                net = getattr(model, net_name)
                weights = data[net_name]
                if weights.shape != net.flat_params.shape:
                    raise ValueError(f"{net_name} has {weights.size} weights, the config expects "
                                     f"{net.flat_params.size}")
                net.flat_params[...] = weights
                buffers = getattr(net, "flat_buffers", None)
                if buffers is not None and buffers.size:
                    stored = data[f"{net_name}_buffers"]
                    if stored.shape != buffers.shape:
                        raise ValueError(f"{net_name} has {stored.size} running statistics, "
                                         f"the config expects {buffers.size}")
                    buffers[...] = stored
                opt = model.opt_g if net_name == "G" else model.opt_d
                for key, value in opt.state().items():
                    stored = data[f"opt_{net_name}_{key}"]
                    if key == "t":
                        opt.t = int(stored)
                    else:
                        value[...] = stored
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError,
            zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a valid npgan checkpoint ({err}); "
                              "train again to write a new one") from None
    return model, meta


def run_dir(name):
    """Where the book's runs keep their checkpoints: $NPGAN_DATA/runs/<name>
    (the notebooks of 21.1 and 21.2 write there, 21.4 evaluates what they wrote)."""
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
            save(model, folder / f"epoch_{epoch:03d}.npz", epoch=epoch, seed=seed)
            history.to_csv(folder / "history.csv")

    return keep


def book_checkpoints(model_name, epochs, subset=None, every=10, seed=0, run_name=None,
                     progress=True):
    """{epoch: path} of the checkpoints of the book's run of "gan" or "cgan".

    The notebooks of 21.1 and 21.2 leave these behind in ``run_dir(run_name)``
    (default name: "book-<model>", or "book-<model>-subset<N>" for a quick run on
    the first N images). If the
    last one is missing, or was trained with another recipe, the run is
    trained here, with the same settings, so that 21.4 can always evaluate it.
    """
    from .data import load_mnist
    from .models import book_config
    from .train import train

    config = book_config(model_name)
    folder = run_dir(run_name or f"book-{model_name}" + (f"-subset{subset}" if subset else ""))
    last = folder / f"epoch_{epochs:03d}.npz"
    current = False
    if last.exists():
        try:
            model, meta = load(last)
            current = model.config == config and meta.get("seed") == seed
        except CheckpointError:
            pass
    if not current:
        for old in folder.glob("epoch_*.npz"):
            old.unlink()
        images, labels = load_mnist("train", subset=subset)
        model = models.build(config, seed=seed)
        train(model, images, labels if model.conditional else None, epochs=epochs, seed=seed,
              progress=progress, on_epoch_end=epoch_saver(model, folder, epochs, every, seed))
    return {int(p.stem.split("_")[1]): p for p in sorted(folder.glob("epoch_*.npz"))}
