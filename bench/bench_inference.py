"""What `learn.get_preds` costs over a hand-written evaluation loop, on the Fashion-MNIST validation set.

    .venv/bin/python bench/bench_inference.py [--repeats 7] [--model cnn] [--threads 1]

Both sides: the course's CNN (minitrain.models) in eval mode without gradients, every validation batch of
`fashion_dls` (10,000 images with the full data, 1,000 with the embedded subset) moved to the device, the
outputs copied to the CPU, concatenated and turned into softmax probabilities; with `--with-loss` also the
per-item cross-entropy losses. `get_preds` does it through the Learner (TrainCB, DeviceCB; a MetricsCB and a
ProgressCB are on the learner and left out by the probe run), saving and restoring the learner's state and
the RNGs. A round runs both once, in alternating order; the median of the per-round ratios is reported
(robust to other work on the machine), with the best times, and the hand loop timed against itself shows how
far from 1 a ratio strays by noise alone. Torch runs on one thread by default (see bench_learner.py: on a
shared machine a second thread makes timings swing).
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import def_device, to_device
from minitrain.datasets import load_fashion_mnist
from minitrain.learner import Learner, TrainCB, DeviceCB, MetricsCB, ProgressCB
from minitrain.inference import get_preds  # noqa: F401 (adds Learner.get_preds)
from minitrain.models import fashion_dls, create_model

def hand_loop(model, dl, with_loss):
    "The reference: eval mode, no gradients, outputs to the CPU, softmax (and per-item losses)."
    model.eval()
    outs, targs, losses = [], [], []
    with torch.no_grad():
        for xb, yb in dl:
            xb, yb = to_device((xb, yb))
            out = model(xb)
            if with_loss: losses.append(F.cross_entropy(out, yb, reduction='none').cpu())
            outs.append(out.cpu()); targs.append(yb.cpu())
    res = torch.cat(outs).softmax(-1), torch.cat(targs)
    return res + (torch.cat(losses),) if with_loss else res

def timed(f):
    t = time.perf_counter(); res = f()
    return time.perf_counter() - t, res

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--model', default='cnn')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--with-loss', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fm = load_fashion_mnist()
    dls = fashion_dls(256, fm)
    torch.manual_seed(0)
    learn = Learner(create_model(args.model), dls, F.cross_entropy,
                    cbs=[TrainCB(), DeviceCB(), MetricsCB(accuracy=MulticlassAccuracy()), ProgressCB(bar=False)])
    learn.model.to(def_device)
    wl = args.with_loss
    ours = lambda: learn.get_preds(with_loss=wl)
    hand = lambda: hand_loop(learn.model, dls.valid, wl)
    a, b = ours(), hand()  # warm up, and check both compute the same
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a, b)), "get_preds and the hand loop disagree"
    ratios, noise, t_ours, t_hand = [], [], [], []
    for r in range(args.repeats):
        if r % 2: (th, _), (to, _), (th2, _) = timed(hand), timed(ours), timed(hand)
        else: (to, _), (th, _), (th2, _) = timed(ours), timed(hand), timed(hand)
        ratios.append(to/th); noise.append(th2/th); t_ours.append(to); t_hand.append(th)
    print(f"data: {fm.source.split(':')[0]}, {len(dls.valid.ds)} validation images in {len(dls.valid)} batches; "
          f"model {args.model}; device {def_device}; {torch.get_num_threads()} thread(s); with_loss={wl}")
    print(f"best: get_preds {min(t_ours)*1e3:.1f} ms, hand-written loop {min(t_hand)*1e3:.1f} ms")
    print(f"get_preds / hand-written loop: median {statistics.median(ratios):.3f} over {args.repeats} rounds "
          f"(hand / hand, noise: {statistics.median(noise):.3f}); goal <= 1.1")

if __name__ == '__main__': main()
