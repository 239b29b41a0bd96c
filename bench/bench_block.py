"""Batch transforms in the DataLoader (the data block stage) vs the callback path they replace, and workers.

    python bench/bench_block.py [--images 512] [--size 128] [--repeats 3]

Writes `--images` JPEGs of Imagenette-160's shape to a temporary folder, then times one training epoch
of a small CNN (`Learner.fit(1, valid=False)`, bs=64, `RandomResizedCrop(size, min_scale=0.35)`, then
`IntToFloatTensor` and `Normalize.from_stats(*imagenet_stats)`) in rounds that time every side once:

1. batch transforms in the DataLoader (`DataLoaders.from_folder(..., batch_tfms=...)`, a `TfmdDL`) vs
   the old callback path (a `SeededDataLoader` of uint8 batches and `BatchTransformCB` with the same
   transforms after `DeviceCB`), both without workers: ratio = callback time / DataLoader time
   (target >= 0.95);
2. the DataLoader path with 2 persistent workers vs 0 (target >= 1.6 on two idle cores).

Each ratio is the median of the rounds' ratios, then the ratio of the best times. The load average is
printed before and after; read the ratios with it.
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn
sys.path.insert(0, str(Path(__file__).parent))
from bench_vision import write_folder, round_times, ratio
from minitrain.core import set_seed
from minitrain.data import DataLoaders
from minitrain.learner import Learner, TrainCB, DeviceCB
from minitrain.inference import BatchTransformCB
from minitrain.vision import (RandomResizedCrop, IntToFloatTensor, Normalize, imagenet_stats, ImageDataset,
                              SeededDataLoader, Pipeline, get_image_files)
from minitrain.block import TfmdDL  # also DataLoaders.from_folder

def model():
    "A small CNN: the training step is there, but loading dominates."
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))

def fit_epoch(dl, cbs=()):
    "One training epoch of the small CNN over `dl`."
    set_seed(0)
    Learner(model(), DataLoaders(dl, dl), F.cross_entropy, lr=0.01, cbs=[TrainCB(), DeviceCB(), *cbs]).fit(1, valid=False)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--images', type=int, default=512)
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    load = lambda: ' '.join(open('/proc/loadavg').read().split()[:3]) if os.path.exists('/proc/loadavg') else 'n/a'
    print(f"load average before: {load()}")
    tfms = [IntToFloatTensor(), Normalize.from_stats(*imagenet_stats)]
    with tempfile.TemporaryDirectory() as d:
        write_folder(Path(d), a.images)
        crop = RandomResizedCrop(a.size, min_scale=0.35)
        mk = lambda nw, **kw: DataLoaders.from_folder(d, item_tfms=crop, batch_tfms=tfms[1:], bs=64, num_workers=nw, **kw).train
        dl0, dl2 = mk(0), mk(2, persistent_workers=True)
        files = get_image_files(Path(d)/'train')
        old = SeededDataLoader(ImageDataset(files, [int(f.parent.name[1:]) for f in files], crop, train=True), bs=64, shuffle=True)
        cb = BatchTransformCB(Pipeline(tfms), each=True)  # the pipeline on the images, training and validation
        t = round_times({'callback path': lambda: fit_epoch(old, [cb]), 'DataLoader, 0 workers': lambda: fit_epoch(dl0),
                         'DataLoader, 2 workers': lambda: fit_epoch(dl2)}, a.repeats)
        del dl2
    for k, v in t.items(): print(f"{k:24s} {a.images/statistics.median(v):8.0f} images/s (median), {a.images/min(v):8.0f} best")
    print(f"ratio 1, DataLoader / callback path, 0 workers (target >= 0.95): {ratio(t, 'callback path', 'DataLoader, 0 workers')}")
    print(f"ratio 2, DataLoader 2 workers / 0 workers (target >= 1.6): {ratio(t, 'DataLoader, 0 workers', 'DataLoader, 2 workers')}")
    print(f"load average after: {load()}")

if __name__ == '__main__': main()
