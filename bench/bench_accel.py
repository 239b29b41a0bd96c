"""Time minitrain.accel's callbacks against the same tricks written as a plain PyTorch loop, in the same run.

    .venv/bin/python bench/bench_accel.py [--reps 3] [--n 5000] [--bs 256] [--threads 1]

For each setup (float32, bfloat16 autocast, channels-last, both, clipping, accumulation) it prints the
seconds per training epoch of the plain loop and of a minitrain Learner (best of `reps`, interleaved),
their ratio (the callbacks' overhead), and each setup's speed against float32. Same data, model,
optimizer (torch.optim.SGD) and batch order for both. Runs on the CPU with bfloat16, or on a GPU with
float16 and a GradScaler if one is available (`def_device`). On a CPU shared with other jobs, time on
one thread (`--threads 1`): with several, a thread that loses its core stalls the others at every
parallel operation and the timings swing wildly.
"""
import argparse, math, time
from functools import partial
import torch
from torch import nn
import torch.nn.functional as F
from minitrain.core import set_seed, def_device
from minitrain.datasets import load_fashion_mnist
from minitrain.data import Dataset, DataLoader, DataLoaders
from minitrain.learner import Learner, TrainCB, DeviceCB
from minitrain.accel import MixedPrecisionCB, GradClipCB, GradAccumCB, ChannelsLastCB

DTYPE = torch.float16 if def_device == 'cuda' else torch.bfloat16

def conv(ni, nf): return nn.Sequential(nn.Conv2d(ni, nf, 3, 2, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU())
def get_model(): return nn.Sequential(conv(1, 16), conv(16, 32), conv(32, 64), conv(64, 128), nn.Flatten(), nn.Linear(128*2*2, 10))

SETUPS = {  # name: (mixed precision, channels-last, clip, accumulate n batches)
    'float32': (False, False, False, 1), f'{str(DTYPE)[6:]} autocast': (True, False, False, 1),
    'channels-last': (False, True, False, 1), f'{str(DTYPE)[6:]} + channels-last': (True, True, False, 1),
    'clipping': (False, False, True, 1), 'accumulation 4': (False, False, False, 4)}

def sync():
    "Wait for the GPU, so that timings include its work."
    if def_device == 'cuda': torch.cuda.synchronize()

def plain_epoch(model, dl, opt, amp, cl, clip, acc, scaler):
    "One training epoch written out by hand: the reference."
    model.train()
    n = len(dl)
    for i, (x, y) in enumerate(dl):
        x, y = x.to(def_device), y.to(def_device)
        if cl: x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(def_device, dtype=DTYPE, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss / min(acc, n - i // acc * acc)).backward()
        if (i + 1) % acc == 0 or i + 1 == n:
            scaler.unscale_(opt)
            if clip: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt); scaler.update()
            opt.zero_grad()

def time_plain(setup, dl):
    "Seconds for one epoch of the plain loop in `setup`."
    amp, cl, clip, acc = setup
    set_seed(0)
    model = get_model().to(def_device)
    if cl: model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler(def_device, enabled=amp and DTYPE == torch.float16)
    sync(); t0 = time.perf_counter()
    plain_epoch(model, dl, opt, amp, cl, clip, acc, scaler)
    sync(); return time.perf_counter() - t0

def time_learner(setup, dl):
    "Seconds for one epoch of a minitrain Learner with the callbacks for `setup`."
    amp, cl, clip, acc = setup
    cbs = [MixedPrecisionCB(DTYPE) if amp else TrainCB(), DeviceCB(def_device)]
    if cl: cbs.append(ChannelsLastCB())
    if clip: cbs.append(GradClipCB(1.0))
    if acc > 1: cbs.append(GradAccumCB(acc))
    set_seed(0)
    learn = Learner(get_model(), DataLoaders(dl, dl), F.cross_entropy, lr=0.1, cbs=cbs, opt_func=partial(torch.optim.SGD, momentum=0.9))
    sync(); t0 = time.perf_counter()
    learn.fit(1, valid=False)
    sync(); return time.perf_counter() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--n', type=int, default=5000, help='training images')
    ap.add_argument('--bs', type=int, default=256)
    ap.add_argument('--threads', type=int, default=None, help="torch's CPU threads (default: torch's choice)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    fm = load_fashion_mnist(source='embedded')
    x = ((fm.x_train[:a.n].float()/255 - 0.2860)/0.3530)[:, None]
    ds = Dataset(x, fm.y_train[:a.n])
    best = {}
    for rep in range(a.reps + 1):  # rep 0 warms up
        for name, setup in SETUPS.items():
            dl = DataLoader(ds, bs=a.bs // setup[3])
            for who, f in (('plain', time_plain), ('minitrain', time_learner)):
                t = f(setup, dl)
                if rep: best[name, who] = min(best.get((name, who), math.inf), t)
    print(f"device {def_device}, {torch.get_num_threads()} threads, {a.n} images, batches of {a.bs}, best of {a.reps}")
    print(f"{'setup':26}{'plain s':>9}{'minitrain s':>13}{'minitrain/plain':>17}{'vs float32':>12}")
    base = best['float32', 'minitrain']
    for name in SETUPS:
        p, m = best[name, 'plain'], best[name, 'minitrain']
        print(f"{name:26}{p:9.3f}{m:13.3f}{m/p:16.2f}x{m/base:11.2f}x")

if __name__ == '__main__': main()
