"""Peak resident memory and steady-state allocations of a long training run.

Loads a 60,000-image training split (Fashion-MNIST by default; Debian's
``dataset-fashion-mnist`` package provides it offline), builds the default
GAN and runs ``Trainer.run`` for ``--steps`` iterations. It reports:

- the peak resident set size of the process (the kernel's high-water mark,
  ``VmHWM``), after loading, after building and at the end;
- with ``tracemalloc`` (started before anything is loaded, so that a block
  allocated earlier and replaced during the run is seen to be freed), the
  memory traced as allocated after a warm-up and at the end of the measured
  steps, and the growth split into the training history (one float per
  column per step, which grows by design) and everything else, which should
  be zero;
- the largest transient allocation within a step (traced peak minus the
  memory held at the step's start), which shows what a step allocates and
  frees.

Run ``python benchmarks/bench_memory.py --help`` for the options; ``--tiny``
is the smoke test run by the test suite.
"""

import argparse
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
    p.add_argument("--data-dir", help="directory with the IDX files (optional)")
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


def history_bytes(history):
    """Bytes held by the history lists and their float entries."""
    total = 0
    for values in history.values():
        total += sys.getsizeof(values)
        # Small ints (-5 to 256) are shared objects that nobody allocates.
        total += sum(
            sys.getsizeof(v)
            for v in values
            if not (isinstance(v, int) and -5 <= v <= 256)
        )
    return total


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

    start_current, _ = tracemalloc.get_traced_memory()
    start_history = history_bytes(trainer.history)
    transient = 0
    checkpoints = []
    began = time.perf_counter()
    every = max(1, args.steps // 10)
    for i in range(1, args.steps + 1):
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        trainer.train_step()
        _, peak = tracemalloc.get_traced_memory()
        transient = max(transient, peak - before)
        if i % every == 0 or i == args.steps:
            current, _ = tracemalloc.get_traced_memory()
            checkpoints.append((i, current - start_current))
    elapsed = time.perf_counter() - began
    end_current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = end_current - start_current
    history_growth = history_bytes(trainer.history) - start_history
    report.update(
        {
            "steps": args.steps,
            "batch": args.batch,
            "seconds": elapsed,
            "traced_growth_bytes": growth,
            "history_growth_bytes": history_growth,
            "other_growth_bytes": growth - history_growth,
            "largest_transient_bytes": transient,
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
        f"traced allocations, growth over the steps: {growth} bytes "
        f"(history {history_growth} bytes, everything else "
        f"{report['other_growth_bytes']} bytes)"
    )
    print(
        "growth after step: "
        + ", ".join(f"{i}: {b / 1024:.0f} KiB" for i, b in checkpoints)
    )
    print(f"largest transient allocation within one step: {transient / 1024:.0f} KiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
