"""How fast an image folder loads: JPEG decoding and RandomResizedCrop in our DataLoader's workers.

    python bench/bench_vision.py [--images 1024] [--size 128] [--repeats 3]

Writes `--images` JPEGs of Imagenette-160's shape (160 pixels on the short side, 160-240 on the long
one) to a temporary folder, then times one epoch of `DataLoaders.from_folder(...).train` (shuffled,
bs=64, `RandomResizedCrop(size, min_scale=0.35)`, float batches made in the main process) and prints ratios of
throughput from `--repeats` rounds that time every side once, one after the other. Each ratio is given
twice: the median of the rounds' own ratios (both sides ran seconds apart, so the drift of a shared
machine's speed, often 20% over a minute, mostly cancels), and the ratio of each side's best time:

1. our DataLoader with num_workers=2 vs num_workers=0 (target >= 1.6 on two idle cores), with new
   workers each epoch and with `persistent_workers=True` (the workers of the last epoch kept, which
   saves starting them: what a run of many epochs sees);
2. our DataLoader vs torch.utils.data.DataLoader over the same items, both with 2 workers, new
   each epoch and persistent (target >= 1.0); torch's uint8 batches are made float in the loop, as ours
   come, so both sides do the same work.

Workers need free cores: other programs on the machine lower ratio 1 most. The load average is
printed before and after; read the ratios with it.
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from minitrain.data import DataLoaders
from minitrain.vision import RandomResizedCrop, ImageDataset
import minitrain.block  # DataLoaders.from_folder

def write_folder(root: Path, n: int, seed=0):
    "Write `n` smooth random RGB JPEGs (160 pixels on the short side) in two classes of train/ and one image per class in val/."
    rng = np.random.default_rng(seed)
    for i in range(n + 2):
        split, cls = ('val', f'c{i % 2}') if i >= n else ('train', f'c{i % 2}')
        (root/split/cls).mkdir(parents=True, exist_ok=True)
        w = int(rng.integers(160, 241))
        small = rng.integers(0, 256, (10, w//16, 3), dtype=np.uint8)  # upscaled noise: compresses like a photo, not like static
        Image.fromarray(small).resize((w, 160), Image.Resampling.BICUBIC).save(root/split/cls/f'{i:05d}.jpg', quality=90)

def epoch(dl):
    "Go through one epoch of `dl`; the number of images."
    return sum(len(xb) for xb, yb in dl)

def float_epoch(dl):
    "`epoch` of a loader of uint8 batches, each made float in [0, 1] as ours yields them (the same work on both sides)."
    return sum(len(xb.float().div_(255)) for xb, yb in dl)

def round_times(fns: dict, repeats: int) -> dict:
    "The wall times of each function in `fns` (a list, one per round) over `repeats` rounds that run each once."
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter(); f(); times[k].append(time.perf_counter() - t)
    return times

def ratio(times: dict, slow: str, fast: str) -> str:
    "How many times faster `fast` ran than `slow`: the median of the rounds' ratios, and the ratio of the best times."
    rounds = statistics.median(s/f for s, f in zip(times[slow], times[fast]))
    return f"{rounds:.2f} (best times: {min(times[slow])/min(times[fast]):.2f})"

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--images', type=int, default=1024)
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--repeats', type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3]) if os.path.exists('/proc/loadavg') else 'n/a'}")
    with tempfile.TemporaryDirectory() as d:
        write_folder(Path(d), a.images)
        mk = lambda nw, **kw: DataLoaders.from_folder(d, item_tfms=RandomResizedCrop(a.size, min_scale=0.35), bs=64, num_workers=nw, **kw).train
        ours0, ours2, ours2p = mk(0), mk(2), mk(2, persistent_workers=True)
        ds = ImageDataset(ours2.ds.items, [0]*len(ours2.ds), RandomResizedCrop(a.size, min_scale=0.35), train=True)  # the same items
        mk_torch = lambda **kw: torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, **kw)
        torch2, torch2p = mk_torch(), mk_torch(persistent_workers=True)
        assert epoch(ours0) == float_epoch(torch2) == a.images
        t = round_times({'ours, 0 workers': lambda: epoch(ours0), 'ours, 2 workers': lambda: epoch(ours2),
                        'torch, 2 workers': lambda: float_epoch(torch2), 'ours, 2 persistent': lambda: epoch(ours2p),
                        'torch, 2 persistent': lambda: float_epoch(torch2p)}, a.repeats)
        del ours2p, torch2p  # their workers stop with them, before the folder goes
    for k, v in t.items(): print(f"{k:20s} {a.images/statistics.median(v):8.0f} images/s (median), {a.images/min(v):8.0f} best")
    print(f"ratio 1, ours 2 workers / 0 workers (target >= 1.6): new each epoch {ratio(t, 'ours, 0 workers', 'ours, 2 workers')}, "
          f"persistent {ratio(t, 'ours, 0 workers', 'ours, 2 persistent')}")
    print(f"ratio 2, ours / torch DataLoader, 2 workers (target >= 1.0): new each epoch {ratio(t, 'torch, 2 workers', 'ours, 2 workers')}, "
          f"persistent {ratio(t, 'torch, 2 persistent', 'ours, 2 persistent')}")
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3]) if os.path.exists('/proc/loadavg') else 'n/a'}")

if __name__ == '__main__': main()
