"""Peak resident memory and steady-state allocations of a long training run.

Loads a 60,000-image training split (Fashion-MNIST by default; Debian's
``dataset-fashion-mnist`` package provides it offline), builds the default
GAN and runs ``Trainer.run`` for ``--steps`` iterations. It reports:

- the peak resident set size of the process (the kernel's high-water mark,
  ``VmHWM``), after loading, after building and at the end;
- with ``tracemalloc`` (started before anything is loaded, so that a block
  allocated earlier and replaced during the run is seen to be freed), the
  memory held after a warm-up and at checkpoints during the measured steps.
  The training history grows by design (one number per column per step): at
  each checkpoint its lists are measured and emptied, so that the growth
  reported besides it is that of everything else, which should be zero;
- what a step allocates and frees again (traced peak within the step minus
  the memory held at its start), median and largest over the steps.

Run ``python benchmarks/bench_memory.py --help`` for the options; ``--tiny``
is the smoke test run by the test suite.
"""

import argparse
import gc
import json
import sys
import time
import tracemalloc

import numpy as np

from npgan.data import load_dataset
from npgan.gan import GAN, GANConfig
from npgan.train import Trainer

TINY = {"z_dim": 8, "data_dim": 48, "g_hidden": (32, 64), "d_hidden": (64, 32)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument(
        "--data", dest="data_dir", help="directory with the IDX files (optional)"
    )
    p.add_argument("--steps", type=int, default=2000, help="measured iterations")
    p.add_argument("--warmup", type=int, default=20, help="iterations before tracing")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="npgan/BLAS threads")
    p.add_argument(
        "--tiny",
        action="store_true",
        help="small network on 2,000 random images, no data set (smoke test)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def rss_mib(field):
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process, in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if field == "VmHWM":  # not Linux: the peak from getrusage
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 2**20
    return float("nan")


def held():
    """Bytes traced as allocated, after emptying CPython's free lists.

    Freed tuples, floats, lists and dicts go to per-type free lists that
    tracemalloc still counts as allocated (up to 2,000 tuples of each size).
    A full collection empties them; without it that bounded cache would look
    like growth.
    """
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def clear_history(trainer):
    for values in trainer.history.values():
        values.clear()


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        from npgan import _parallel

        _parallel.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    report = {"rss_start_mib": rss_mib("VmRSS")}
    tracemalloc.start()
    rng = np.random.default_rng(args.seed)
    if args.tiny:
        config = GANConfig(**TINY, batch_size=args.batch)
        images = rng.integers(0, 256, size=(2000, TINY["data_dim"]), dtype=np.uint8)
        source = "2,000 random images"
    else:
        config = GANConfig(batch_size=args.batch)
        data = load_dataset(args.dataset, "train", data_dir=args.data_dir)
        images, source = data.images, data.source
        del data
    report["images"] = [int(s) for s in images.shape]
    report["source"] = source
    report["peak_rss_after_load_mib"] = rss_mib("VmHWM")
    gan = GAN(config, rng=rng)
    trainer = Trainer(gan, images, rng=rng)
    report["peak_rss_after_build_mib"] = rss_mib("VmHWM")
    trainer.run(args.warmup)

    # Everything the measurement itself keeps is allocated before it starts.
    every = max(1, args.steps // 10)
    transients = np.zeros(args.steps, np.int64)
    checkpoints = np.zeros((args.steps // every + 1, 2), np.int64)
    n_checkpoints = 0
    history_growth = 0
    clear_history(trainer)
    start_current = held()
    began = time.perf_counter()
    for i in range(1, args.steps + 1):
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        trainer.train_step()
        _, peak = tracemalloc.get_traced_memory()
        transients[i - 1] = peak - before
        if i % every == 0 or i == args.steps:
            # The history grows by design: measure it, then set it aside so
            # that what remains is everything else.
            with_history = held()
            clear_history(trainer)
            current = held()
            history_growth += with_history - current
            checkpoints[n_checkpoints] = i, current - start_current
            n_checkpoints += 1
    elapsed = time.perf_counter() - began
    tracemalloc.stop()
    checkpoints = [(int(i), int(b)) for i, b in checkpoints[:n_checkpoints]]
    growth = checkpoints[-1][1]
    # From the first checkpoint on: leaves out what the first steps after
    # the warm-up allocate once (and the checkpoint's own bookkeeping).
    steady = checkpoints[-1][1] - checkpoints[0][1]
    transients.sort()
    report.update(
        {
            "steps": args.steps,
            "batch": args.batch,
            "seconds": elapsed,
            "history_growth_bytes": history_growth,
            "other_growth_bytes": growth,
            "steady_growth_bytes": steady,
            "steady_growth_steps": checkpoints[-1][0] - checkpoints[0][0],
            "median_transient_bytes": int(np.median(transients)),
            "largest_transient_bytes": int(transients[-1]),
            "growth_at": checkpoints,
            "peak_rss_mib": rss_mib("VmHWM"),
            "rss_end_mib": rss_mib("VmRSS"),
        }
    )
    print(
        f"{source}: {report['images'][0]} images; batch {args.batch}; "
        f"{args.steps} measured steps after {args.warmup} warm-up steps "
        f"in {elapsed:.1f} s"
    )
    print(
        f"peak RSS after loading the data:  {report['peak_rss_after_load_mib']:.0f} MiB"
    )
    peak = report["peak_rss_after_build_mib"]
    print(f"peak RSS after building the GAN:  {peak:.0f} MiB")
    print(f"peak RSS at the end of the run:   {report['peak_rss_mib']:.0f} MiB")
    print(
        f"traced allocations held, growth over the steps: {growth} bytes "
        f"besides the history, which grew by {history_growth} bytes "
        f"({history_growth / args.steps:.0f} bytes a step)"
    )
    print(
        f"of which from step {checkpoints[0][0]} to step {checkpoints[-1][0]}: "
        f"{steady} bytes"
    )
    print(
        "growth besides the history after step: "
        + ", ".join(f"{i}: {b} B" for i, b in checkpoints)
    )
    print(
        "allocated and freed within one step: median "
        f"{report['median_transient_bytes'] / 1024:.1f} KiB, largest "
        f"{report['largest_transient_bytes'] / 1024:.0f} KiB"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
