"""The speedrun's trials (nbs/15a_speedrun.ipynb, "What did not pay"): one Fashion-MNIST run of the main job's recipe
with one thing changed, printed as a JSON line of its validation accuracy (plain, with flip TTA, with flip and shift
TTA) and seconds.

    python bench/bench_speedrun.py [--model pool_cnn|cnn] [--channels 16,48,96,192] [--paper-stem] [--epochs 7]
        [--lr 1e-2] [--wd 0.01] [--ls 0.1] [--pct 0.25] [--sqr-mom 0.99] [--bs 256] [--no-flip] [--erase]
        [--head avg|flat|cat] [--seed 42] [--threads 1] [--alt-flip] [--small-first SIZE,EPOCHS]

The recipe is `minitrain train`'s: `pool_cnn`, Adam, one-cycle, bfloat16 autocast, channels-last, random flips, label
smoothing. The recipe before the max-pool stem is `--model cnn --channels 24,48,96,192 --epochs 8`; `--paper-stem`
gives pool_cnn the ResNet paper's stem order (pool after batch norm and ReLU).
Accuracy does not depend on the machine's load, so trials run side by side, one thread each (`--threads 1`: the
same seed then gives other numbers than the command's two threads; compare means over `--seed`s, since one seed's
noise is about 0.15 points). Seconds do depend on the load: time with bench/bench_main.py, not here.

Two trials change the data rather than the net: `--alt-flip` (airbench's alternating flip, instead of random flips:
each image is flipped in every other epoch, starting at random) and `--small-first` (progressive resizing, as in
fast.ai's DAWNBench runs: the first EPOCHS epochs train on images shrunk to SIZE pixels, cheaper steps).
"""
import argparse, contextlib, io, json, time
from functools import partial
import torch
import torch.nn as nn
import torch.nn.functional as F
from minitrain.core import set_seed
from minitrain.datasets import load_fashion_mnist
from minitrain.models import fashion_dls, cnn, pool_cnn
from minitrain.learner import Learner, DeviceCB, MetricsCB
from minitrain.optimizer import Adam
from minitrain.augment import RandFlip, RandErase, LabelSmoothingCrossEntropy, BatchTransformCB
from minitrain.accel import ChannelsLastCB, MixedPrecisionCB
from minitrain.learner import Callback
import minitrain.schedule, minitrain.inference  # fit_one_cycle, get_preds

class CatPool(nn.Module):
    "Average and max pooling side by side (fastai's AdaptiveConcatPool2d to 1×1), flattened."
    def forward(self, x): return torch.cat([x.mean((-2, -1)), x.amax((-2, -1))], 1)

def model(name: str, chans, head: str, paper_stem: bool = False) -> nn.Sequential:
    ("`pool_cnn(chans)` (with `paper_stem`, its stem in the ResNet paper's order) or `cnn(chans)`, with its head: "
     "`avg` (the model's own), `flat` (flatten the 2×2 maps) or `cat` pooling.")
    m = cnn(chans) if name == 'cnn' else pool_cnn(chans, pool_first=not paper_stem)
    if head == 'avg': return m
    body = m[:len(chans)]
    if head == 'flat': return nn.Sequential(*body, nn.Flatten(), nn.Linear(chans[-1]*4, 10))
    return nn.Sequential(*body, CatPool(), nn.Linear(chans[-1]*2, 10))

class AltFlipCB(Callback):
    "Flip each training image in every other epoch, the first time at random (`seed`): airbench's alternating flip."
    def __init__(self, seed: int): self.seed = seed
    def before_fit(self, learn):
        self.ds = learn.dls.train.ds
        self.x = self.ds.x  # the images as loaded; put back after fit
        self.odd = torch.randint(0, 2, (len(self.x),), generator=torch.Generator().manual_seed(self.seed))
    def before_epoch(self, learn):
        flip = ((self.odd + learn.epoch) % 2 == 1).view(-1, 1, 1, 1)
        self.ds.x = torch.where(flip, self.x.flip(-1), self.x)
    def after_fit(self, learn): self.ds.x = self.x

class SmallFirstCB(Callback):
    "Train the first `epochs` epochs on batches shrunk to `size`×`size` pixels (progressive resizing)."
    order = ChannelsLastCB.order - 1
    def __init__(self, size: int, epochs: int): self.size, self.epochs = size, epochs
    def before_batch(self, learn):
        if learn.training and learn.epoch < self.epochs:
            x, y = learn.batch
            learn.batch = (F.interpolate(x, size=(self.size, self.size), mode='bilinear', antialias=True), y)

def accuracy(p, y) -> float: return round((p.argmax(1) == y).float().mean().item()*100, 2)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', choices=['pool_cnn', 'cnn'], default='pool_cnn')
    ap.add_argument('--channels', default='16,48,96,192'); ap.add_argument('--epochs', type=int, default=7)
    ap.add_argument('--paper-stem', action='store_true')
    ap.add_argument('--bs', type=int, default=256); ap.add_argument('--lr', type=float, default=1e-2)
    ap.add_argument('--wd', type=float, default=0.01); ap.add_argument('--ls', type=float, default=0.1)
    ap.add_argument('--pct', type=float, default=0.25); ap.add_argument('--sqr-mom', type=float, default=0.99)
    ap.add_argument('--no-flip', action='store_true'); ap.add_argument('--erase', action='store_true')
    ap.add_argument('--head', choices=['avg', 'flat', 'cat'], default='avg')
    ap.add_argument('--seed', type=int, default=42); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--alt-flip', action='store_true'); ap.add_argument('--small-first', default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); set_seed(a.seed)
    chans = tuple(int(c) for c in a.channels.split(','))
    dls = fashion_dls(a.bs, load_fashion_mnist())
    cbs = [MixedPrecisionCB(), DeviceCB('cpu'), MetricsCB()]
    tfms = [] if a.no_flip or a.alt_flip else [RandFlip()]
    if a.erase: tfms.append(RandErase())
    if tfms: cbs.append(BatchTransformCB(nn.Sequential(*tfms), on_val=False, each=True))
    if a.alt_flip: cbs.append(AltFlipCB(a.seed))
    if a.small_first: cbs.append(SmallFirstCB(*(int(n) for n in a.small_first.split(','))))
    loss = LabelSmoothingCrossEntropy(a.ls) if a.ls else F.cross_entropy
    learn = Learner(model(a.model, chans, a.head, a.paper_stem), dls, loss, lr=a.lr,
                    opt_func=partial(Adam, wd=a.wd, sqr_mom=a.sqr_mom), cbs=cbs)
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # no metrics lines: the JSON line is the output
        learn.fit_one_cycle(a.epochs, lr_max=a.lr, pct_start=a.pct, cbs=[ChannelsLastCB()])
    secs = time.perf_counter() - t
    flip = lambda x: x.flip(-1)
    shift = lambda dx: (lambda x: torch.roll(x, dx, -1))  # a pixel left or right
    p, y = learn.get_preds()
    p_flip, _ = learn.get_preds(tfms=[flip])
    p_shift, _ = learn.get_preds(tfms=[flip, shift(1), shift(-1), lambda x: shift(1)(x).flip(-1),
                                      lambda x: shift(-1)(x).flip(-1)])
    print(json.dumps(dict(options=vars(a), accuracy=accuracy(p, y), flip_tta=accuracy(p_flip, y),
                          flip_shift_tta=accuracy(p_shift, y), fit_s=round(secs, 1))))

if __name__ == '__main__': main()
