"""Time a training epoch of the course CNN with and without ActivationStats, in the same run.

    .venv/bin/python bench/bench_hooks.py [--reps 5] [--n 5000] [--bs 256] [--threads 1]

Each round trains one epoch without, then one with ActivationStats (hooking the ReLUs, as the course does,
and every module), on the same data, model and batch order; it prints the median of the per-round ratios
(with / without: the cost of the statistics; the goal is at most 1.10) and their spread. On a CPU shared
with other jobs, time on one thread (`--threads 1`): with several, a thread that loses its core stalls the
others and timings swing. The load average is printed: compare runs only at similar loads.
"""
import argparse, statistics, time
import torch
from torch import nn
import torch.nn.functional as F
from minitrain.core import set_seed, def_device
from minitrain.datasets import load_fashion_mnist
from minitrain.learner import Learner, TrainCB, DeviceCB
from minitrain.hooks import ActivationStats
from minitrain.models import cnn, fashion_dls

def sync():
    if def_device == 'cuda': torch.cuda.synchronize()

def epoch_time(dls, cbs) -> float:
    set_seed(0)
    learn = Learner(cnn(), dls, F.cross_entropy, lr=0.1, cbs=[TrainCB(), DeviceCB(), *cbs])
    sync(); t = time.perf_counter()
    learn.fit(1, valid=False)
    sync()
    return time.perf_counter() - t

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--reps', type=int, default=5); p.add_argument('--n', type=int, default=5000)
    p.add_argument('--bs', type=int, default=256); p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    fm = load_fashion_mnist()
    fm = type(fm)(fm.x_train[:a.n], fm.y_train[:a.n], fm.x_valid[:a.bs], fm.y_valid[:a.bs], fm.classes, fm.source)
    dls = fashion_dls(a.bs, fm)
    setups = {'ReLU layers': lambda: [ActivationStats(nn.ReLU)], 'every module': lambda: [ActivationStats()]}
    epoch_time(dls, [])  # warm up
    base, ratios = [], {k: [] for k in setups}
    for _ in range(a.reps):
        b = epoch_time(dls, []); base.append(b)
        for k, f in setups.items(): ratios[k].append(epoch_time(dls, f()) / b)
    with open('/proc/loadavg') as f: load = f.read().split()[:3]
    print(f"course CNN, {a.n} images, bs {a.bs}, {def_device}, {a.threads} thread(s), load average {' '.join(load)}")
    print(f"without ActivationStats: {statistics.median(base):.3f} s/epoch (median of {a.reps})")
    for k, r in ratios.items():
        print(f"with ActivationStats ({k}): ratio {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})")

if __name__ == '__main__': main()
