"""Does the average of G's weights (average.py) help the DCGAN and the InfoGAN too?

The scoreboard (scoreboard.py) measured it on the MLP GAN and CGAN, where it is
now part of the book's recipe. Here each of the two other book recipes is
trained once more, as the book trains it (all training images, the book's
epochs, seed 0), with ema_decay=0.999, and scored beside the book's own run
(without the average, from $NPGAN_DATA/runs) by the same measures. Both are
scored against the validation images train[50000:60000] (metrics.held_out), so
that a decision taken from this table does not look at the test images. One
seed each: a first look, not a scoreboard.

    OPENBLAS_NUM_THREADS=1 python experiments/ema_elsewhere.py --model dcgan
    OPENBLAS_NUM_THREADS=1 python experiments/ema_elsewhere.py --model infogan
    python experiments/ema_elsewhere.py --table      # → experiments/ema_elsewhere.csv
"""

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

import npgan
from npgan import bookruns, metrics
from npgan.data import data_dir
from npgan.files import atomic_write

from scoreboard import HERE, cpu_name, write_csv

COLUMNS = ("model", "variant", "epochs", "seed", "fd", "fd_floor", "fd_ratio", "max_share", "min_share",
           "c1_matched_accuracy", "train_seconds", "date", "machine")


def scores(model, name, variant, epochs, seconds):
    r = metrics.evaluate(model, seed=0, against="validation")
    shares = np.array(r["digit_shares"])
    row = {"model": name, "variant": variant, "epochs": epochs, "seed": 0, "fd": r["fd"],
           "fd_floor": r["fd_floor"], "fd_ratio": r["fd"] / r["fd_floor"],
           "max_share": float(shares.max()), "min_share": float(shares.min()),
           "c1_matched_accuracy": r.get("codes", {}).get("c1", {}).get("matched_accuracy"),
           "train_seconds": seconds, "date": time.strftime("%Y-%m-%d"), "machine": cpu_name()}
    print(json.dumps(row), flush=True)
    return row


def run(name):
    epochs = npgan.BOOK_EPOCHS[name]
    book_model, history = bookruns.book_run(name)           # the book's run, reused if trained
    rows = [scores(book_model, name, "book (no average)", epochs, history.seconds)]
    config = replace(npgan.book_config(name), ema_decay=0.999)
    images, _ = npgan.load_mnist("train")
    model = npgan.build(config, seed=0)
    trained = npgan.train(model, images, epochs=epochs, seed=0, progress=False)
    rows.append(scores(model, name, "book + average 0.999", epochs, trained.seconds))
    out = data_dir() / "ema_elsewhere" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)


def table():
    rows = [r for p in sorted((data_dir() / "ema_elsewhere").glob("*.json")) for r in json.loads(p.read_text())]
    if not rows:
        sys.exit("no runs yet: run --model dcgan and --model infogan first")
    write_csv(HERE / "ema_elsewhere.csv", COLUMNS, rows)
    print(f"wrote {HERE / 'ema_elsewhere.csv'} ({len(rows)} rows)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("dcgan", "infogan"))
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    table() if args.table else run(args.model) if args.model else p.error("give --model or --table")
