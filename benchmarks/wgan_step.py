"""How long a WGAN-GP step takes beside the book's GAN step, timed round-robin in one
run (so both see the same load on a shared machine), and how many WGAN epochs fit in
the wall time of the GAN's book run (21.5: "trained no longer than the book's GAN").

Both consume one batch of 64 real images per train_step, so an epoch is 937 steps for
both: for the WGAN, 937 critic steps and 187 G steps (n_critic = 5).

    .venv/bin/python benchmarks/wgan_step.py
"""

from functools import partial

import numpy as np

from bench_train import Contender, time_round_robin   # benchmarks/ is this script's folder
from npgan import BOOK_EPOCHS, book_config, build
from npgan.threads import blas_threads


def main(rounds=7, steps=20):
    x = np.random.default_rng(0).uniform(-1, 1, (64, 784)).astype(np.float32)
    contenders = [Contender(name, name, name, 0.0, partial(build(book_config(name), seed=0).train_step, x))
                  for name in ("gan", "wgan")]
    times = {k: float(np.median(v)) for k, v in
             time_round_robin(contenders, rounds, steps, budget=float("inf"), warmup=3).items()}
    for name, t in times.items():
        print(f"{name}: {t * 1000:.2f} ms per step (median of {rounds} rounds)")
    ratio = times["wgan"] / times["gan"]
    fit = int(BOOK_EPOCHS["gan"] / ratio)
    print(f"a WGAN step takes {ratio:.2f}× a GAN step: {fit} WGAN epochs take the wall time "
          f"of the GAN's {BOOK_EPOCHS['gan']}")


if __name__ == "__main__":
    with blas_threads():   # as many BLAS threads as `npgan train` uses (one)
        main()
