"""ResNets at CPU speed: the epoch time of `resnet` and `xresnet` on Fashion-MNIST as ratios to the `cnn`'s, timed
in the same process, interleaved; and `--images` on 128-pixel photos in images/s.

    python bench/bench_resnet.py [--rounds 3] [--threads 2] [--photos 400] [--seeds 42,1,2,3]

1. Each round fits every model one epoch (one-cycle, Adam, channels-last: what `minitrain train` does), in turn,
   alternating the order; the ratio to the cnn is taken within each round (other processes slow both alike) and the
   median of the rounds is printed, with the accuracy after the first round's epoch and the load average.
2. `python -m minitrain train --images DIR --model resnet --epochs 1` on a folder of `--photos` 128-pixel JPEGs
   (Fashion-MNIST images scaled up and tinted, written to a temporary folder): its training images/s.
3. With `--seeds`: the accuracy after one epoch of `resnet` and of the course's resnet as it was before issue 30
   (`course_resnet` below: a stride-1 stem, blocks that halve the image in their second conv; 38x the cnn an epoch),
   for each seed, one after the other, with the old command's defaults (float32, no flips, plain
   cross-entropy); the mean of the differences says which is more accurate. It takes minutes a seed.
The goal (issue 30): an epoch of `resnet` or `xresnet` costs at most 3x the cnn's. On a busy machine, `--threads 1`
and the CPU-seconds ratio are the steadier measure.
"""
import argparse, contextlib, io, json, os, statistics, subprocess, sys, tempfile, time
from functools import partial
import numpy as np
import torch
import torch.nn.functional as F
from minitrain.core import set_seed
from minitrain.datasets import load_fashion_mnist
from torch import nn
from minitrain.models import MODELS, fashion_dls, ResBlock, _head
from minitrain.init import conv
from minitrain.learner import Learner, TrainCB, DeviceCB, MetricsCB
from minitrain.optimizer import Adam
from minitrain.accel import ChannelsLastCB
import minitrain.schedule  # fit_one_cycle

def course_resnet(nfs=(16, 32, 64, 128)) -> nn.Sequential:
    "The course's resnet as minitrain had it before issue 30: a stride-1 stem, blocks that halve in their second conv."
    bn = nn.BatchNorm2d
    return nn.Sequential(conv(1, nfs[0], stride=1, norm=bn),
                         *[ResBlock(ni, nf, stride=2, act=nn.ReLU, norm=bn, shortcut_norm=bn)
                           for ni, nf in zip(nfs[:-1], nfs[1:])], *_head(nfs[-1]))

def one_epoch(make_model, dls, seed=42) -> tuple[float, float, float]:
    ("Fit a fresh `make_model()` one epoch as the command does (float32); (seconds, CPU seconds, validation "
     "accuracy).")
    set_seed(seed)
    learn = Learner(make_model(), dls, F.cross_entropy, lr=1e-2, opt_func=partial(Adam, wd=0.01),
                    cbs=[TrainCB(), DeviceCB('cpu'), MetricsCB(), ChannelsLastCB()])
    t, c = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()): learn.fit_one_cycle(1)  # no metrics lines
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    p, y = learn.get_preds()
    return secs, cpu, (p.argmax(1) == y).float().mean().item()

def photos(folder: str, n: int, size=128):
    "Write `n` Fashion-MNIST images as tinted `size`-pixel JPEGs in `folder/train|val/<class>/` (4/5 train)."
    from PIL import Image
    fm = load_fashion_mnist(source='embedded')
    rng = np.random.default_rng(0)
    for k in range(n):
        x, y = fm.x_train[k].numpy()[..., None]/255, int(fm.y_train[k])
        rgb = (x*rng.integers(128, 256, 3) + (1 - x)*rng.integers(0, 96, 3)).astype(np.uint8)
        d = os.path.join(folder, 'train' if k % 5 else 'val', f'c{y}')
        os.makedirs(d, exist_ok=True)
        Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR).save(os.path.join(d, f'{k}.jpg'))

def compare_accuracy(seeds, dls):
    "Print the accuracy after one epoch of `resnet` and `course_resnet` for each of `seeds`, and their mean difference."
    diffs = []
    for seed in seeds:
        new, old = (one_epoch(f, dls, seed)[2]*100 for f in (MODELS['resnet'], course_resnet))
        diffs.append(new - old)
        print(f"seed {seed}: accuracy after one epoch: resnet {new:.2f}%, the course's old resnet {old:.2f}%")
    print(f"resnet minus the old one, mean of {len(seeds)} seeds: {statistics.mean(diffs):+.2f} points "
          f"(one seed's noise is about 0.3)")

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=3); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--models', nargs='*', default=['cnn', 'resnet', 'xresnet'])
    ap.add_argument('--photos', type=int, default=400, help='128-pixel photos for the --images run (0: skip it)')
    ap.add_argument('--seeds', default='', help="compare resnet's accuracy after one epoch with the course's old "
                                                 "resnet for these seeds, e.g. 42,1,2,3 (default: skip it)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = [m for m in a.models if m in MODELS]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}; "
          f"models {', '.join(models)}")
    dls = fashion_dls(256, load_fashion_mnist())
    secs, cpus, accs = {m: [] for m in models}, {m: [] for m in models}, {}
    for r in range(a.rounds):
        for m in models if r % 2 == 0 else models[::-1]:
            s, c, acc = one_epoch(MODELS[m], dls)
            secs[m].append(s); cpus[m].append(c); accs.setdefault(m, acc)
    for m in models:  # CPU seconds vary less with the machine's load than wall seconds (with one thread, the same)
        ratio = statistics.median(s/c for s, c in zip(secs[m], secs['cnn']))
        cpu_ratio = statistics.median(s/c for s, c in zip(cpus[m], cpus['cnn']))
        print(f"{m:8} epoch {statistics.median(secs[m]):6.1f} s (median), {ratio:5.2f}x the cnn's; in CPU seconds "
              f"{cpu_ratio:5.2f}x; accuracy after one epoch {accs[m]:.4f}")
    if a.photos:
        with tempfile.TemporaryDirectory() as d:
            photos(d, a.photos)
            out = os.path.join(d, 'run')
            subprocess.run([sys.executable, '-m', 'minitrain', 'train', '--images', d, '--model', 'resnet', '--epochs',
                            '1', '--quiet', '--threads', str(a.threads), '--out', out], check=True, capture_output=True)
            s = json.load(open(os.path.join(out, 'summary.json')))
            print(f"--images, {a.photos} 128-pixel photos, resnet, one epoch: {s['images_per_s']:.0f} training "
                  "images/s")
    if a.seeds: compare_accuracy([int(s) for s in a.seeds.split(',')], dls)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")

if __name__ == '__main__': main()
