"""How fast minitrain's DataLoader goes through one epoch of Fashion-MNIST's 60,000 training images (bs=256, shuffled).

    python bench/bench_data.py [--repeats 5] [--repeats-workers 5]

Prints three ratios of throughput, each side timed in this run as the best of several repeats, the
repeats of the two sides interleaved so that both see the same machine:

1. our DataLoader on Dataset(x, y) vs bare `x[idx], y[idx]` over a random permutation, the limit of
   this data path (target >= 0.9); our fast path gathers with `index_select`, faster than the
   advanced indexing of `x[idx]`, so it is also compared with bare `index_select` (for information);
2. our DataLoader vs torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)
   (target >= 5);
3. with a per-item random rotation (about 0.05 ms of CPU per image), num_workers=2 vs num_workers=0
   (target >= 1.5 on a machine with at least 2 idle cores).

The images are held as normalized float32 tensors, as a training loop feeds them to a model. Torch
runs on one intra-op thread here: gathering a batch of 256 images gains nothing from a second thread,
and when another program keeps the other core busy, OpenMP's barrier can stall each gather for
milliseconds (an epoch of bare indexing then takes seconds), so that the ratios would measure the
neighbours. Other programs still distort ratio 3 most (the workers need the cores): the load average
is printed before and after.
"""
import argparse, math, os, time
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from minitrain.datasets import load_fashion_mnist
from minitrain.data import Dataset, DataLoader

BS = 256

def best_times(fns: dict, repeats: int) -> dict:
    "The best wall time of each function in `fns`, over `repeats` rounds that run each of them once."
    best = {k: float('inf') for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best

def bare_epoch(x, y):
    "The limit: index the tensors directly with slices of a random permutation."
    for idx in torch.randperm(len(x)).split(BS): xb, yb = x[idx], y[idx]

def bare_index_select_epoch(x, y):
    "The same with `index_select`, as our fast path does."
    for idx in torch.randperm(len(x)).split(BS): xb, yb = x.index_select(0, idx), y.index_select(0, idx)

def loader_epoch(dl):
    "Go through one epoch of `dl`."
    for xb, yb in dl: pass

_ys, _xs = torch.meshgrid(torch.linspace(-1, 1, 28), torch.linspace(-1, 1, 28), indexing='ij')

def rotate(x: torch.Tensor) -> torch.Tensor:
    "The 28×28 image `x` rotated by a random angle of up to about 11 degrees either way (elementwise ops only, no BLAS threads)."
    a = torch.rand(()).item()*0.4 - 0.2
    c, s = math.cos(a), math.sin(a)
    grid = torch.stack((c*_xs - s*_ys, s*_xs + c*_ys), -1)[None]
    return F.grid_sample(x[None, None], grid, align_corners=True)[0, 0]

class Rotated(Dataset):
    "A Dataset whose images are rotated at random, item by item (so it is fetched item by item)."
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return rotate(x), y

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=5, help='repeats of the fast epochs (default 5)')
    ap.add_argument('--repeats-workers', type=int, default=5, help='repeats of the epochs with a transform (default 5)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    fm = load_fashion_mnist()
    x = (fm.x_train.float()/255 - 0.2860)/0.3530
    y = fm.y_train
    print(f"data: {fm.source}: {len(x)} images as {x.dtype} {tuple(x.shape)}; bs={BS}, shuffled; "
          f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f}")
    if len(x) < 60_000: print("warning: not the full training set (install dataset-fashion-mnist); the ratios are for this subset")

    ours = DataLoader(Dataset(x, y), bs=BS, shuffle=True)
    theirs = torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=BS, shuffle=True)
    assert ours.batched_fetch and len(ours) == len(theirs)
    t = best_times({'bare': lambda: bare_epoch(x, y), 'bare_select': lambda: bare_index_select_epoch(x, y),
                    'ours': lambda: loader_epoch(ours), 'torch': lambda: loader_epoch(theirs)}, args.repeats)
    rot = Rotated(x, y)
    tw = best_times({'workers0': lambda: loader_epoch(DataLoader(rot, bs=BS, shuffle=True)),
                     'workers2': lambda: loader_epoch(DataLoader(rot, bs=BS, shuffle=True, num_workers=2))},
                    args.repeats_workers)

    ms = lambda s: f"{s*1000:.1f} ms"
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"one epoch: bare x[idx] {ms(t['bare'])}, bare index_select {ms(t['bare_select'])}, our DataLoader {ms(t['ours'])}, "
          f"torch DataLoader {ms(t['torch'])}; with a per-item rotation: num_workers=0 {ms(tw['workers0'])}, "
          f"num_workers=2 {ms(tw['workers2'])}")
    print(f"(for information: our DataLoader / bare index_select throughput: {t['bare_select']/t['ours']:.2f})")
    print(f"ratio 1: our DataLoader / bare x[idx], y[idx] throughput: {t['bare']/t['ours']:.2f} (target >= 0.9)")
    print(f"ratio 2: our DataLoader / torch DataLoader(TensorDataset) throughput: {t['torch']/t['ours']:.2f} (target >= 5)")
    print(f"ratio 3: num_workers=2 / num_workers=0 throughput with a per-item transform: {tw['workers0']/tw['workers2']:.2f} (target >= 1.5)")

if __name__ == '__main__': main()
