"""Does a training step stay fast when the machine is busy? (``make bench``, issue #13)

For the book's GAN step (batch 64), npgan and PyTorch (Adam), each with 1 and
with 2 BLAS/OpenMP threads, the time per step is measured in three conditions,
in one run:

    idle        nothing else running (but this benchmark);
    busy loop   one other process spinning on one core (`while True: pass`);
    training    a second npgan training (`python -m npgan train --model gan`,
                with npgan's default threads), as when two notebooks train at once.

Within a condition the contenders are timed round-robin in short samples; the
figures are medians in ms, and the ratio busy/idle is what the target is about
(≤ 1.5×). npgan's default (npgan.threads.DEFAULT_THREADS) is marked.
Results: printed, and written to benchmarks/results/busy.json.

    python benchmarks/bench_busy.py [--repeats 7] [--steps 20]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import npgan
from npgan.files import atomic_write
from npgan.threads import BLAS_VARIABLES, DEFAULT_THREADS

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import torch
    import torch_gan
except (ImportError, OSError):
    torch = torch_gan = None

THREADS = (1, 2)
SETTLE_SECONDS = 0.3


def competitor(kind, folder):
    """Start the competing process of a condition (None for idle)."""
    env = {k: v for k, v in os.environ.items() if k not in (*BLAS_VARIABLES, "NPGAN_THREADS")}
    if kind == "busy loop":
        cmd = [sys.executable, "-c", "while True: pass"]
    elif kind == "training":
        cmd = [sys.executable, "-m", "npgan", "train", "--model", "gan", "--epochs", "1000",
               "--quiet", "--snapshot-epochs", "", "--out", str(folder)]
    else:
        return None
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_contenders(images):
    rng = np.random.default_rng(0)
    batches = [images[rng.integers(0, len(images), 64)] for _ in range(16)]
    contenders = {}
    for threads in THREADS:
        net = npgan.build(npgan.book_config("gan"), seed=0)
        contenders[("npgan", threads)] = (net.train_step, batches)
        if torch_gan is not None:
            net_t = torch_gan.TorchGAN(npgan.book_config("gan"), "adam", seed=0, threads=threads)
            contenders[("PyTorch Adam", threads)] = (
                net_t.train_step, [torch.from_numpy(b.copy()) for b in batches])
    return contenders


def time_sample(name, threads, step, batches, steps):
    """Seconds per step over ``steps`` steps, with ``threads`` threads."""
    if name == "npgan":
        limits = threadpool_limits(limits=threads, user_api="blas")
    else:
        torch.set_num_threads(threads)
        limits = threadpool_limits(limits=threads, user_api="blas")  # and NumPy's, for fairness
    with limits:
        time.sleep(SETTLE_SECONDS)       # let the previous contender's threads stop spinning
        step(batches[0])
        t0 = time.perf_counter()
        for i in range(steps):
            step(batches[i % len(batches)])
        return (time.perf_counter() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7, help="samples per contender and condition")
    p.add_argument("--steps", type=int, default=20, help="steps per sample")
    p.add_argument("--json", type=Path, default=HERE / "results" / "busy.json")
    args = p.parse_args(argv)
    images, _ = npgan.load_mnist("train", subset=4096)
    contenders = make_contenders(images)
    for step, batches in contenders.values():       # warm-up: buffers, lazy set-up
        for b in batches[:3]:
            step(b)
    medians = {}
    for condition in ("idle", "busy loop", "training"):
        with tempfile.TemporaryDirectory() as folder:
            proc = competitor(condition, folder)
            time.sleep(3 if proc else 0)              # the competitor gets going
            samples = {key: [] for key in contenders}
            try:
                for r in range(args.repeats):
                    keys = list(contenders)
                    keys = keys[r % len(keys):] + keys[:r % len(keys)]
                    for key in keys:
                        samples[key].append(time_sample(*key, *contenders[key], args.steps))
            finally:
                if proc:
                    proc.kill()
                    proc.wait()
        for key, values in samples.items():
            medians[(condition, *key)] = statistics.median(values) * 1e3
        print(f"  {condition}: done", file=sys.stderr, flush=True)

    print(f"\nGAN step (batch 64), median ms per step; ratio to idle.  npgan's default: "
          f"{DEFAULT_THREADS} thread(s)")
    print(f"{'contender':22s} {'threads':>7s} {'idle':>8s} {'busy loop':>16s} {'training':>16s}")
    rows = []
    for name, threads in contenders:
        idle = medians[("idle", name, threads)]
        loop = medians[("busy loop", name, threads)]
        second = medians[("training", name, threads)]
        mark = " (default)" if name == "npgan" and threads == DEFAULT_THREADS else ""
        print(f"{name + mark:22s} {threads:7d} {idle:8.2f} {loop:8.2f} ({loop / idle:4.2f}×) "
              f"{second:8.2f} ({second / idle:4.2f}×)")
        rows.append({"contender": name, "threads": threads, "idle_ms": idle,
                     "busy_loop_ms": loop, "training_ms": second,
                     "busy_loop_ratio": loop / idle, "training_ratio": second / idle})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpus": os.cpu_count(),
            "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "default_threads": DEFAULT_THREADS, "rows": rows}
    with atomic_write(args.json, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
