"""What batch augmentation costs: a training epoch of the course's CNN (`minitrain.models.cnn`) on Fashion-MNIST,
with the CLI's `--augment` transforms (random crop with 1 pixel of padding, left-right flip, RandErase) in a
`BatchTransformCB`, against the same epoch without them, on the CPU.

    .venv/bin/python bench/bench_augment.py [--rounds 7] [--bs 256] [--threads 1] [--n-train 10000] [--data DIR]

Both sides run the same Learner (TrainCB, DeviceCB, MetricsCB(accuracy), Adam), from the same initial weights and
the same data order. A round runs each variant once, in alternating order; the ratio is taken within each round
and the median over rounds is reported (robust to other work on the machine slowing some rounds). The epoch
without transforms is also timed against itself, which shows how far from 1 a ratio strays by noise alone.
The data is the first `--n-train` images of the full Fashion-MNIST when found (else of the embedded 5,000-image
subset); the script says which. (The ratio does not depend on the epoch's length, the run time does.)
The goal: transforms add at most 15% to the epoch (ratio <= 1.15).
"""
import argparse, os, statistics, time
from functools import partial
import torch
import torch.nn.functional as F
from torch import nn
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.datasets import load_fashion_mnist
from minitrain.learner import Learner, TrainCB, DeviceCB, MetricsCB
from minitrain.optimizer import Adam
from minitrain.models import cnn, fashion_dls
from minitrain.augment import BatchTransformCB, RandCrop, RandFlip, RandErase

def epoch_s(dls, tfm) -> float:
    "Seconds for one training epoch of a fresh `cnn()` (seed 0), with `tfm` on the training batches when given."
    set_seed(0)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    metrics.show = lambda d: None  # no printing while timing
    cbs = [TrainCB(), DeviceCB('cpu'), metrics] + ([BatchTransformCB(tfm, on_val=False, each=True)] if tfm is not None else [])
    learn = Learner(cnn(), dls, F.cross_entropy, lr=1e-2, cbs=cbs, opt_func=partial(Adam, wd=0.01))
    start = time.perf_counter()
    learn.fit(1, valid=False)
    return time.perf_counter() - start

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rounds', type=int, default=7)
    ap.add_argument('--bs', type=int, default=256)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--n-train', type=int, default=10_000, help='training images per epoch (the first ones; default: %(default)s)')
    ap.add_argument('--data', default=None, help='folder with the Fashion-MNIST .gz files (default: search, else the embedded subset)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fm = load_fashion_mnist(path=args.data)
    fm = fm._replace(x_train=fm.x_train[:args.n_train], y_train=fm.y_train[:args.n_train])
    dls = fashion_dls(args.bs, fm)
    tfm = nn.Sequential(RandCrop(padding=1), RandFlip(), RandErase())
    print(f"data: {len(fm.x_train)} training images from {fm.source}; batch size {args.bs}; {args.threads} torch thread(s); "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    epoch_s(dls, tfm)  # warm up: first-call costs of the kernels
    plain, aug, plain2 = [], [], []
    for r in range(args.rounds):
        order = [('plain', None), ('aug', tfm), ('plain2', None)]
        if r % 2: order.reverse()
        res = {nm: epoch_s(dls, t) for nm, t in order}
        plain.append(res['plain']); aug.append(res['aug']); plain2.append(res['plain2'])
    ratios = [a/p for a, p in zip(aug, plain)]
    noise = [q/p for q, p in zip(plain2, plain)]
    med = statistics.median(ratios)
    print(f"epoch without transforms: median {statistics.median(plain):.2f}s (best {min(plain):.2f}s)")
    print(f"epoch with transforms:    median {statistics.median(aug):.2f}s (best {min(aug):.2f}s)")
    print(f"ratio with/without: median {med:.3f} over {args.rounds} rounds (per round: {' '.join(f'{r:.3f}' for r in ratios)}); "
          f"noise (without vs without): median {statistics.median(noise):.3f}")
    print(f"goal <= 1.15: {'met' if med <= 1.15 else 'NOT met'}; load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

if __name__ == '__main__': main()
