"""Can the Parzen target be bought without a better model? The same trained G,
sampled with z ~ N(0, s²) instead of N(0, 1) ("truncation" or a lower sampling
temperature): for s < 1 the samples crowd around G's most typical images
(chapter 21.5, the scoreboard's limits).

The models are the baseline of the scoreboard's second round (the book recipe
with the average of G's weights, before the batch spread: scoreboard.BASELINES[60];
seed 0, 60 epochs, train[:50000]), and every figure is scored against the
validation images, as the scoreboard's; at z×1 they are its "book" rows.
The trained checkpoints are kept in $NPGAN_DATA/scoreboard/temperature/, so a
second call only scores. Writes experiments/temperature.csv.

    OPENBLAS_NUM_THREADS=1 python experiments/temperature.py [--model gan cgan]
"""

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

import npgan
from npgan import checkpoint, metrics
from npgan.data import data_dir

from scoreboard import BASELINES, TRAIN, write_csv

HERE = Path(__file__).resolve().parent
SCALES = (1.0, 0.9, 0.8, 0.7)
EPOCHS = 60
COLUMNS = ("model", "z_scale", "max_share", "min_share", "fd", "fd_floor", "fd_ratio", "parzen",
           "parzen_se", "label_accuracy")


class ScaledNoise:
    """The same model, but its noise z is multiplied by ``scale`` (labels and
    everything else unchanged): what metrics.evaluate samples from."""

    def __init__(self, model, scale):
        self.model, self.scale = model, scale

    def sample_noise(self, n, rng=None, out=None):
        z = self.model.sample_noise(n, rng, out)
        z *= z.dtype.type(self.scale)
        return z

    def __getattr__(self, name):   # generate, conditional, name, config, …: the model's
        return getattr(self.model, name)


def trained(model_name, seed=0):
    config = replace(npgan.book_config(model_name), **BASELINES[EPOCHS][model_name])
    path = data_dir() / "scoreboard" / "temperature" / f"{model_name}-seed{seed}-e{EPOCHS}.npz"
    if path.exists():
        model, meta = checkpoint.load(path)
        if model.config == config and meta.get("epoch") == EPOCHS:
            return model
        print(f"{path} holds another recipe: training again", flush=True)
    images, labels = npgan.load_mnist("train")
    model = npgan.build(config, seed=seed)
    history = npgan.train(model, images[TRAIN], labels[TRAIN] if model.conditional else None,
                          epochs=EPOCHS, seed=seed, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(model, path, epoch=EPOCHS, seed=seed)
    print(f"{model_name}: trained in {history.seconds:.0f} s → {path}", flush=True)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="*", default=["gan", "cgan"], choices=["gan", "cgan"])
    args = p.parse_args()
    rows = []
    for model_name in args.model:
        model = trained(model_name)
        for scale in SCALES:
            r = metrics.evaluate(ScaledNoise(model, scale), parzen=True, seed=0, against="validation")
            shares = np.array(r["digit_shares"])
            rows.append({"model": model_name, "z_scale": scale, "max_share": float(shares.max()),
                         "min_share": float(shares.min()), "fd": r["fd"], "fd_floor": r["fd_floor"],
                         "fd_ratio": r["fd"] / r["fd_floor"], "parzen": r["parzen_mean"],
                         "parzen_se": r["parzen_se"], "label_accuracy": r.get("label_accuracy")})
            print(f"{model_name} z×{scale}: FD {r['fd']:.2f} ({rows[-1]['fd_ratio']:.2f}× floor), "
                  f"Parzen {r['parzen_mean']:.1f}, shares {shares.min():.1%}–{shares.max():.1%}"
                  + (f", label accuracy {r['label_accuracy']:.2%}" if model.conditional else ""), flush=True)
    write_csv(HERE / "temperature.csv", COLUMNS, rows)
    print(f"wrote {HERE / 'temperature.csv'}")


if __name__ == "__main__":
    main()
