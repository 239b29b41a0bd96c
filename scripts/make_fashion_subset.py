"""Make the embedded Fashion-MNIST subset that ships in minitrain/assets/fashion-mnist-subset.

From the full data (any source `load_fashion_mnist` finds, e.g. Debian's dataset-fashion-mnist), take a
class-balanced random sample: 500 training images of each class from the 60,000 training images and
100 of each class from the 10,000 test images, kept in their original order, written as gzip IDX files.

    python scripts/make_fashion_subset.py [--per-class-train 500] [--per-class-valid 100] [--seed 0]
"""
import argparse
import numpy as np
from minitrain.datasets import load_fashion_mnist, write_idx, EMBEDDED_DIR, FASHION_FILES

def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    "`per_class` random indices of each label, sorted so the sample keeps the data's order."
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--per-class-train', type=int, default=500)
    ap.add_argument('--per-class-valid', type=int, default=100)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    fm = load_fashion_mnist()
    if fm.source.startswith('embedded'): raise SystemExit("need the full Fashion-MNIST to sample from; install dataset-fashion-mnist")
    rng = np.random.default_rng(args.seed)
    EMBEDDED_DIR.mkdir(parents=True, exist_ok=True)
    for split, per_class in (('train', args.per_class_train), ('valid', args.per_class_valid)):
        x, y = getattr(fm, f'x_{split}').numpy(), getattr(fm, f'y_{split}').numpy().astype(np.uint8)
        idx = balanced_indices(y, per_class, rng)
        write_idx(x[idx], EMBEDDED_DIR/FASHION_FILES[f'x_{split}'])
        write_idx(y[idx], EMBEDDED_DIR/FASHION_FILES[f'y_{split}'])
        print(f"{split}: {len(idx)} images from {fm.source}")

if __name__ == '__main__': main()
