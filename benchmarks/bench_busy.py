"""Does a training step stay fast when the machine is busy? (``make bench``, issue #13)

For the book's GAN step (batch 64), npgan and PyTorch (Adam), each with 1 and
with 2 BLAS/OpenMP threads, the time per step is measured in three conditions,
in one run:

    idle        nothing else running (but this benchmark);
    busy loop   one other process spinning on one core (`while True: pass`);
    training    a second npgan training (`python -m npgan train --model gan`,
                with npgan's default threads), as when two notebooks train at once.

Two more npgan contenders, the candidates of issue #13 beside plain 1 and 2:

    spin-free   2 threads whose idle OpenBLAS threads go to sleep at once instead
                of spinning. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT only when it
                loads (blas_server.c: clamped to 4..30, a waiting thread spins
                for 2**value TSC cycles before it sleeps; the default 28 is
                about 0.1 s, the minimum 4 is 16 cycles). So this contender
                lives in a child process (``--child``) started with the variable
                at 4; it keeps its net and answers "time a sample" requests over
                a pipe, so it is timed in turn with the others, in every condition.
    load check  decides once, at the start of the condition (as a training would
                at its start), 2 threads if /proc/stat shows the other cores idle
                over 0.2 s, else 1. os.getloadavg is printed beside it: a 1-minute
                average, it still shows the last condition's load.

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
SPIN_FREE_TIMEOUT = "4"     # OpenBLAS's minimum: 2**4 cycles of spinning, then sleep
IDLE_BELOW = 0.25           # share of the machine's CPU time used by others: "idle" below


def cpu_busy_share(seconds=0.2):
    """Share of all cores' time spent not idle over ``seconds`` (from /proc/stat).
    This process sleeps meanwhile, so what it sees is the others' load."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values[:8])   # idle + iowait; all but guest
    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def load_check_threads():
    """The load-check candidate: 2 threads if the machine looks idle, else 1."""
    busy = cpu_busy_share()
    return (2 if busy < IDLE_BELOW else 1), busy


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


def make_batches(images):
    rng = np.random.default_rng(0)
    return [images[rng.integers(0, len(images), 64)] for _ in range(16)]


class SpinFreeChild:
    """npgan with 2 threads in a child process whose OpenBLAS loaded with
    OPENBLAS_THREAD_TIMEOUT=4; ``step`` is not called here, ``sample`` asks the child."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k not in (*BLAS_VARIABLES, "NPGAN_THREADS")}
        env["OPENBLAS_THREAD_TIMEOUT"] = SPIN_FREE_TIMEOUT
        self.proc = subprocess.Popen([sys.executable, __file__, "--child"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def sample(self, steps):
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def child_main():
    """The child of SpinFreeChild: read a number of steps per line, answer s/step."""
    images, _ = npgan.load_mnist("train", subset=4096)
    batches = make_batches(images)
    net = npgan.build(npgan.book_config("gan"), seed=0)
    for b in batches[:3]:
        net.train_step(b)
    for line in sys.stdin:
        print(time_sample("npgan", 2, net.train_step, batches, int(line)), flush=True)


def make_contenders(images):
    """{(name, threads): (step, batches)}; threads "auto" for the load check, and
    step None for the child, which is timed through child.sample."""
    batches = make_batches(images)
    contenders = {}
    for threads in THREADS:
        net = npgan.build(npgan.book_config("gan"), seed=0)
        contenders[("npgan", threads)] = (net.train_step, batches)
        if torch_gan is not None:
            net_t = torch_gan.TorchGAN(npgan.book_config("gan"), "adam", seed=0, threads=threads)
            contenders[("PyTorch Adam", threads)] = (
                net_t.train_step, [torch.from_numpy(b.copy()) for b in batches])
    contenders[("npgan spin-free", 2)] = (None, None)
    net = npgan.build(npgan.book_config("gan"), seed=0)
    contenders[("npgan load check", "auto")] = (net.train_step, batches)
    return contenders


def time_sample(name, threads, step, batches, steps):
    """Seconds per step over ``steps`` steps, with ``threads`` threads."""
    if name.startswith("npgan"):
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
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main()
    images, _ = npgan.load_mnist("train", subset=4096)
    child = SpinFreeChild()
    contenders = make_contenders(images)
    for (name, threads), (step, batches) in contenders.items():   # warm-up: buffers, lazy set-up
        if step is not None:
            with threadpool_limits(limits=2 if threads == "auto" else threads, user_api="blas"):
                for b in batches[:3]:
                    step(b)
    medians, checks = {}, {}
    try:
        for condition in ("idle", "busy loop", "training"):
            with tempfile.TemporaryDirectory() as folder:
                proc = competitor(condition, folder)
                time.sleep(3 if proc else SETTLE_SECONDS)  # the competitor gets going
                chosen, busy = load_check_threads()
                checks[condition] = {"threads": chosen, "busy_share": busy,
                                     "loadavg_1min": os.getloadavg()[0]}
                samples = {key: [] for key in contenders}
                try:
                    for r in range(args.repeats):
                        keys = list(contenders)
                        keys = keys[r % len(keys):] + keys[:r % len(keys)]
                        for key in keys:
                            name, threads = key
                            step, batches = contenders[key]
                            if step is None:     # the child settles and times itself
                                samples[key].append(child.sample(args.steps))
                            else:
                                samples[key].append(time_sample(
                                    name, chosen if threads == "auto" else threads,
                                    step, batches, args.steps))
                finally:
                    if proc:
                        proc.kill()
                        proc.wait()
            for key, values in samples.items():
                medians[(condition, *key)] = statistics.median(values) * 1e3
            print(f"  {condition}: done; load check saw {busy:.0%} of the CPU time busy, "
                  f"chose {chosen} thread(s); loadavg {checks[condition]['loadavg_1min']:.2f}",
                  file=sys.stderr, flush=True)
    finally:
        child.close()

    print(f"\nGAN step (batch 64), median ms per step; ratio to idle.  npgan's default: "
          f"{DEFAULT_THREADS} thread(s)")
    print(f"{'contender':22s} {'threads':>7s} {'idle':>8s} {'busy loop':>16s} {'training':>16s}")
    rows = []
    for name, threads in contenders:
        idle = medians[("idle", name, threads)]
        loop = medians[("busy loop", name, threads)]
        second = medians[("training", name, threads)]
        mark = " (default)" if name == "npgan" and threads == DEFAULT_THREADS else ""
        print(f"{name + mark:22s} {threads!s:>7s} {idle:8.2f} {loop:8.2f} ({loop / idle:4.2f}×) "
              f"{second:8.2f} ({second / idle:4.2f}×)")
        rows.append({"contender": name, "threads": threads, "idle_ms": idle,
                     "busy_loop_ms": loop, "training_ms": second,
                     "busy_loop_ratio": loop / idle, "training_ratio": second / idle})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpus": os.cpu_count(),
            "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "default_threads": DEFAULT_THREADS, "spin_free_timeout": SPIN_FREE_TIMEOUT,
            "load_check": {"idle_below": IDLE_BELOW, **checks}, "rows": rows}
    with atomic_write(args.json, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    print("load check: " + "; ".join(
        f"{c}: {v['busy_share']:.0%} busy → {v['threads']} thread(s) (loadavg {v['loadavg_1min']:.2f})"
        for c, v in checks.items()))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
