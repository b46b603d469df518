"""The evaluator's training time: the book's CNN (version 3) beside the retired MLP
(version 2), in one run (issue 27: the CNN no slower than the MLP).

    .venv/bin/python benchmarks/evaluator_speed.py                  # both at once, ~3-8 min
    .venv/bin/python benchmarks/evaluator_speed.py --one-at-a-time  # the MLP, then the CNN

Each trains in its own process with its own BLAS-thread rule (the MLP 2 threads,
the CNN 1: EVALUATOR_THREADS of each), by the full protocol (train[:50000], the
epoch chosen on train[50000:], the test accuracy at the end), with nothing
cached. By default the two start together, as `make book` trains an evaluator
beside the book's runs: both meet the same load, and each is the other's. The
pinned kernels of the Makefile are set as it sets them (on x86-64, unless set).

Prints seconds, epochs, test accuracy and the weights' SHA-256 of each, and
writes them with the machine and the load to results/evaluator_speed.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
CHILD = r"""
import json, sys
dataset = sys.argv[2]
if sys.argv[1] == "cnn":
    from npgan.evaluator import train_evaluator
    evaluator = train_evaluator(log=None, dataset=dataset)
    sha = evaluator.weights_sha256()
else:
    import hashlib
    from npgan.evaluator_mlp import train_mlp_evaluator
    evaluator = train_mlp_evaluator(log=None, dataset=dataset)
    sha = hashlib.sha256(b"".join(a.tobytes() for pair in evaluator.weights for a in pair)).hexdigest()
m = evaluator.meta
print(json.dumps({"seconds": m["seconds"], "epochs": m["recipe"]["epochs"], "best_epoch": m["epoch"],
                  "test_accuracy": m["test_accuracy"], "sha256": sha}))
"""
NAMES = {"mlp": "MLP, version 2 (2 BLAS threads)", "cnn": "CNN, version 3 (1 BLAS thread)"}


def child_env():
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NPGAN_THREADS"):
        env.pop(name, None)   # each evaluator pins its own count, as in `make`
    if platform.machine() == "x86_64":   # the Makefile's pinned kernels
        env.setdefault("OPENBLAS_CORETYPE", "Haswell")
        env.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")
    return env


def start(which, dataset):
    return subprocess.Popen([sys.executable, "-c", CHILD, which, dataset], env=child_env(),
                            stdout=subprocess.PIPE, text=True)


def finish(proc, which):
    out, _ = proc.communicate()
    if proc.returncode:
        sys.exit(f"error: the {which} evaluator's training failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="train the MLP, then the CNN (default: both at once)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "evaluator_speed.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    wall = time.perf_counter()
    results = {}
    if args.one_at_a_time:
        for which in ("mlp", "cnn"):
            results[which] = finish(start(which, args.dataset), which)
    else:
        procs = {which: start(which, args.dataset) for which in ("mlp", "cnn")}
        results = {which: finish(proc, which) for which, proc in procs.items()}
    mode = "one at a time" if args.one_at_a_time else "both at once"
    print(f"{args.dataset}, {mode}, load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}, {time.perf_counter() - wall:.0f} s in all")
    print(f"{'evaluator':<34}{'seconds':>9}{'epochs':>8}{'chosen':>8}{'test acc.':>11}  weights SHA-256")
    for which, r in results.items():
        print(f"{NAMES[which]:<34}{r['seconds']:>9.1f}{r['epochs']:>8}{r['best_epoch']:>8}"
              f"{r['test_accuracy']:>11.4f}  {r['sha256'][:16]}")
    ratio = results["cnn"]["seconds"] / results["mlp"]["seconds"]
    print(f"CNN / MLP training time: {ratio:.2f} (target ≤ 1)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": platform.node(),
        "cpu_count": os.cpu_count(), "dataset": args.dataset, "mode": mode,
        "load_average_before": load_before, "results": results, "cnn_over_mlp": ratio}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
