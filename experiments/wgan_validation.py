"""WGAN-GP on MNIST: the paper's settings (the book's recipe) against single changes,
trained on train[:50000] and scored against train[50000:60000] (the test images are
kept for the book's figures), as experiments/scoreboard.py does for the other models.

Each run: seed 0, the given epochs, one BLAS thread; its row (FD and its floor, digit
shares, Parzen, the critic's W1 estimate on the validation images, training seconds)
goes to experiments/wgan_validation.csv, written again after every run, so a partial
sweep keeps its finished rows.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python experiments/wgan_validation.py --epochs 12
    OPENBLAS_NUM_THREADS=1 python experiments/wgan_validation.py --epochs 30 \
        --only "paper (book recipe)" "n_critic 2, lr 2e-4" --out experiments/wgan_validation_e30.csv
"""

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import npgan
from npgan import metrics
from npgan.files import atomic_write
from npgan.wgan import w1_estimate

HERE = Path(__file__).resolve().parent
TRAIN = slice(0, 50_000)   # metrics.VALIDATION (train[50000:60000]) is held out
VARIANTS = {"paper (book recipe)": {}, "n_critic 2": {"n_critic": 2}, "lr 2e-4": {"lr_d": 2e-4, "lr_g": 2e-4},
            # both of the two that helped after 10 epochs: G gets 2.5× the steps, each twice as long
            "n_critic 2, lr 2e-4": {"n_critic": 2, "lr_d": 2e-4, "lr_g": 2e-4}}
COLUMNS = ("variant", "changes", "seed", "epochs", "g_steps", "fd", "fd_floor", "fd_ratio", "max_share",
           "min_share", "kl_uniform", "parzen", "parzen_se", "w1_validation", "train_seconds",
           "seconds_per_epoch")


def run_one(name, changes, epochs, seed=0):
    config = replace(npgan.book_config("wgan"), **changes)
    images, _ = npgan.load_mnist("train")
    model = npgan.build(config, seed=seed)
    history = npgan.train(model, images[TRAIN], epochs=epochs, seed=seed, progress=False)
    scores = metrics.evaluate(model, parzen=True, seed=seed, against="validation")
    shares = np.array(scores["digit_shares"])
    return {"variant": name, "changes": json.dumps(changes), "seed": seed, "epochs": epochs,
            "g_steps": model.opt_g.t, "fd": scores["fd"], "fd_floor": scores["fd_floor"],
            "fd_ratio": scores["fd"] / scores["fd_floor"], "max_share": float(shares.max()),
            "min_share": float(shares.min()), "kl_uniform": scores["kl_uniform"],
            "parzen": scores["parzen_mean"], "parzen_se": scores["parzen_se"],
            "w1_validation": w1_estimate(model, metrics.held_out("mnist", "validation"), seed=seed),
            "train_seconds": history.seconds, "seconds_per_epoch": history.seconds / epochs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    parser.add_argument("--out", default=str(HERE / "wgan_validation.csv"))
    args = parser.parse_args(argv)
    rows = []
    for name, changes in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        rows.append(run_one(name, changes, args.epochs))
        print(json.dumps(rows[-1]), flush=True)
        with atomic_write(args.out, "w", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


if __name__ == "__main__":
    main()
