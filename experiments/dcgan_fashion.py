"""The book's DCGAN recipe on Fashion-MNIST, scored as 21.6 scores it: the committed answer of 21.6's exercise 8.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python experiments/dcgan_fashion.py
        # → dcgan_fashion.csv, dcgan_fashion_snapshots.csv

The run is the book's run of the recipe on Fashion-MNIST (bookruns.book_run("dcgan",
dataset="fashion"), folder book-dcgan-fashion): read back when it is there, otherwise
trained here first (25 epochs, about as long as the MNIST DCGAN: half an hour or more).

The book no longer trains this run (issue 29: a cold `make book` within 30 minutes on
2 cores); the notebook 21.6-dcgan.ipynb reads these two files instead, in every mode.
dcgan_fashion.csv: one row, the run's epochs and training seconds, the Fashion-MNIST
evaluator's test accuracy, and what npgan.metrics.evaluate says of N_SAMPLES samples
(seed SEED, the notebook's settings): FD, the real-vs-real floor, the ten class shares.
dcgan_fashion_snapshots.csv: the images of the snapshot table, one row per (epoch,
sample): the first SAMPLES images of the run's fixed-noise grid (npgan.train.fixed_inputs)
at TABLE_EPOCHS, each as npgan.plot.pixels_to_text (base64 of its 784 uint8 pixels).
"""

import argparse
import time
from pathlib import Path

from npgan import BOOK_EPOCHS, metrics
from npgan.bookruns import book_run
from npgan.plot import grid_images, pixels_to_text

import results_csv   # experiments/results_csv.py

HERE = Path(__file__).parent
OUT = HERE / "dcgan_fashion.csv"
SNAPSHOTS_OUT = HERE / "dcgan_fashion_snapshots.csv"
SEED = 0               # as the notebook's SEED
N_SAMPLES = 10_000     # as the notebook's N_SAMPLES in full mode
EPOCHS = BOOK_EPOCHS["dcgan"]
TABLE_EPOCHS = (1, 5, EPOCHS)   # three columns fit exercise 8's answer (epoch 0 is only noise)
SAMPLES = 20           # of the 100 in a snapshot: the file stays small (about 65 KB)
# Fashion-MNIST's ten classes in label order (Xiao et al. 2017), as column names
CLASSES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle_boot")


def write_csv(path, rows):
    results_csv.write_csv(path, rows)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    commit = results_csv.code_commit()
    evaluator = metrics.load_evaluator(dataset="fashion", log=print)
    model, history = book_run("dcgan", epochs=EPOCHS, seed=SEED, dataset="fashion")
    print(f"the book's Fashion-MNIST DCGAN: {EPOCHS} epochs, {history.seconds:.0f} s of training"
          + (" (the finished run, read back)" if history.reused else " (trained now)"), flush=True)
    result = metrics.evaluate(model, seed=SEED, n=N_SAMPLES, evaluator=evaluator)
    shares = result["digit_shares"]   # "digit": the evaluator's class, here a kind of clothing
    row = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "epochs": EPOCHS, "seed": SEED,
           "n_samples": N_SAMPLES, "train_seconds": f"{history.seconds:.1f}",
           "evaluator_test_accuracy": f"{evaluator.meta['test_accuracy']:.4f}",
           "fd": f"{result['fd']:.4f}", "fd_floor": f"{result['fd_floor']:.4f}",
           **{f"share_{name}": f"{share:.4f}" for name, share in zip(CLASSES, shares)}}
    print(row, flush=True)
    snapshots = [{"epoch": epoch, "sample": i, "pixels": pixels_to_text(image)}
                 for epoch in TABLE_EPOCHS
                 for i, image in enumerate(grid_images(history.snapshots[epoch])[:SAMPLES])]
    write_csv(OUT, [row])
    write_csv(SNAPSHOTS_OUT, snapshots)


if __name__ == "__main__":
    main()
