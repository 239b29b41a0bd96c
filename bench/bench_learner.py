"""How much the Learner costs: a fit with TrainCB + DeviceCB + MetricsCB(accuracy) + ProgressCB against a
hand-written PyTorch loop doing the same work, on Fashion-MNIST held in memory.

    .venv/bin/python bench/bench_learner.py [--repeats 15] [--mlp-batches 188] [--cnn-batches 25] [--threads 1]

Both sides, per batch: move the batch to the device, forward, loss, and when training backward, step,
zero_grad; accumulate loss and accuracy over each epoch and phase, and print them at its end. Same data order,
same initial weights, same optimizer (torch.optim.SGD). A run is one epoch (training batches, then a fifth as
many validation batches); a round runs every variant once, in alternating order (the CNN, whose run-to-run
noise is larger than the framework's cost, gets short runs and twice the rounds). Ratios and differences are
taken within each round and the median over rounds is reported (robust to other work on the machine slowing
some rounds); the best times are shown too, and the hand-written loop is also timed against itself, which
shows how far from 1 a ratio strays by noise alone. Prints the time ratio and the framework's overhead per batch,
(learner - hand) / batches, in µs, for a tiny MLP on 12k images (where overhead shows most) and the course's small CNN,
and the fixed cost of a fit: learner - hand on a fit of a few batches, in ms.
Then, on a single linear layer (so little compute that differences show), the cost per batch over a bare loop (no metrics, no device moves) of: the hand-written loop;
the Learner with TrainCB alone (the framework's own cost: phases, events, the training-step dispatch); each
callback added in turn; and the straightforward design (run_cbs at every event, every batch copied to the CPU
and fed to torcheval, the loss shown on the bar every batch). The progress bar is real (tqdm, forced on) and
writes to /dev/null, as does all printing while timing.

Torch runs on one thread unless --threads says otherwise: these models are too small to gain from a second one,
and on a shared machine a second thread makes timings swing tenfold (another process holding a core stalls
torch's thread barrier), which no number of repeats averages out. The framework's overhead is Python work on one
thread either way.
"""
import argparse, contextlib, gc, os, statistics, time
from functools import partial
import torch
import torch.nn.functional as F
from torch import nn
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import def_device, to_cpu
from minitrain.datasets import load_fashion_mnist
from minitrain.learner import Learner, TrainCB, DeviceCB, MetricsCB, ProgressCB, run_cbs

class Batches:
    "Batches of size `bs` of the tensors `x`, `y` held in memory, in a new random order every epoch when `shuffle`."
    def __init__(self, x, y, bs, shuffle=False, seed=0):
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.g = torch.Generator().manual_seed(seed)
    def __len__(self): return (len(self.x) + self.bs - 1)//self.bs
    def __iter__(self):
        if not self.shuffle:
            for i in range(0, len(self.x), self.bs): yield self.x[i:i+self.bs], self.y[i:i+self.bs]
            return
        idx = torch.randperm(len(self.x), generator=self.g)
        for i in range(0, len(self.x), self.bs):
            j = idx[i:i+self.bs]
            yield self.x[j], self.y[j]

class DLs:
    "`.train` and `.valid`."
    def __init__(self, train, valid): self.train, self.valid = train, valid

def mlp(): return nn.Sequential(nn.Flatten(), nn.Linear(28*28, 50), nn.ReLU(), nn.Linear(50, 10))

def linear(): return nn.Sequential(nn.Flatten(), nn.Linear(28*28, 10))

def cnn():
    "The course's small CNN."
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.Conv2d(16, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

LR = 0.1

def hand_fit(model, dls, epochs=1, device=def_device, metrics=True):
    "The hand-written loop; `metrics=False` leaves out the loss and accuracy (and the device moves)."
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for epoch in range(epochs):
        for training, dl in ((True, dls.train), (False, dls.valid)):
            model.train(training)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            correct, count = torch.zeros((), device=device, dtype=torch.long), 0
            with torch.set_grad_enabled(training):
                for xb, yb in dl:
                    if metrics: xb, yb = xb.to(device), yb.to(device)
                    preds = model(xb)
                    loss = F.cross_entropy(preds, yb)
                    if training:
                        loss.backward()
                        opt.step()
                        opt.zero_grad()
                    if not metrics: continue
                    loss_sum += loss.detach()*len(yb)
                    correct += (preds.argmax(1) == yb).sum()
                    count += len(yb)
            if metrics: print({'accuracy': f'{correct.item()/count:.3f}', 'loss': f'{loss_sum.item()/count:.3f}',
                   'epoch': epoch, 'train': 'train' if training else 'eval'})

def learner_fit(model, dls, cbs, epochs=1, cls=Learner):
    "A Learner fit with callbacks `cbs` (TrainCB first)."
    cls(model, dls, F.cross_entropy, lr=LR, cbs=[TrainCB(), *cbs], opt_func=torch.optim.SGD).fit(epochs)

def full_cbs(): return [DeviceCB(), MetricsCB(accuracy=MulticlassAccuracy()), ProgressCB(bar=True)]

# ---- the straightforward design, for comparison ----

class StraightLearner(Learner):
    "Sorts the callbacks and looks their methods up at every event (`run_cbs`)."
    def callback(self, event): run_cbs(self.cbs, event, self)

class StraightMetricsCB(MetricsCB):
    "The course text's MetricsCB: every batch goes to the CPU and into the metrics."
    def after_batch(self, learn):
        x, y, *_ = to_cpu(learn.batch)
        for m in self.metrics.values(): m.update(to_cpu(learn.preds), y)
        self.loss.update(to_cpu(learn.loss), weight=len(x))

class StraightProgressCB(ProgressCB):
    "Shows the loss on the bar after every batch."
    refresh = 0.

def straight_cbs(): return [DeviceCB(), StraightMetricsCB(accuracy=MulticlassAccuracy()), StraightProgressCB(bar=True)]

CLOCK = time.perf_counter

@contextlib.contextmanager
def quiet():
    "Send stdout and stderr (printing, progress bars) to /dev/null."
    with open(os.devnull, 'w') as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null): yield

def timings(variants, make_model, make_dls, repeats):
    "The times of each variant `name -> fit(model, dls)` in each of `repeats` rounds; a round runs every variant once."
    times = {k: [] for k in variants}
    for i in range(repeats):
        for name, run in list(variants.items())[::1 if i % 2 else -1]:  # alternate the order: no variant always goes first
            torch.manual_seed(0)
            model, dls = make_model(), make_dls()
            gc.collect()  # every run starts without the garbage of the previous ones
            with quiet():
                t = CLOCK()
                run(model, dls)
                times[name].append(CLOCK() - t)
    return times

def paired(times, name, base='hand'):
    "The median over rounds of `name`'s time divided by, and minus, `base`'s time in the same round."
    return (statistics.median([a/b for a, b in zip(times[name], times[base])]),
            statistics.median([a - b for a, b in zip(times[name], times[base])]))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--repeats', type=int, default=15, help='rounds of runs (default 15)')
    ap.add_argument('--mlp-batches', type=int, default=188, help='training batches per MLP run (default 188: 12k images)')
    ap.add_argument('--cnn-batches', type=int, default=25, help='training batches per CNN run (default 25; it gets twice the rounds)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads; 0 lets torch decide (default 1)')
    ap.add_argument('--cpu-time', action='store_true', help='time CPU used by this process instead of wall time '
                    '(steadier on a busy machine; only meaningful with --threads 1)')
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time: CLOCK = time.process_time
    if args.threads: torch.set_num_threads(args.threads)

    fm = load_fashion_mnist()
    norm = lambda x: ((x.float()/255 - 0.2860)/0.3530)[:, None].contiguous()
    xt, yt, xv, yv = norm(fm.x_train), fm.y_train, norm(fm.x_valid), fm.y_valid
    bs = 64
    def data(n_batches):
        "Training and validation batches for a run with `n_batches` training batches."
        nt, nv = n_batches*bs, n_batches*bs//5
        return lambda: DLs(Batches(xt[:nt], yt[:nt], bs, shuffle=True), Batches(xv[:nv], yv[:nv], bs))
    print(f"Learner vs hand-written loop: Fashion-MNIST in memory ({fm.source}), batch size {bs}, device {def_device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeats} rounds, "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    full = {'hand': hand_fit, 'learner': lambda m, d: learner_fit(m, d, full_cbs()), 'hand again': hand_fit}
    print(f"\nTrainCB + DeviceCB + MetricsCB(accuracy) + ProgressCB")
    print(f"{'model':<22}{'batches':>8}{'best hand s':>13}{'best learner s':>16}{'ratio':>7}{'target':>8}{'overhead/batch':>16}"
          f"{'noise':>9}")
    overheads, per_batch = {}, {}
    for name, make_model, n_batches, rounds, target in (('tiny MLP 784-50-10', mlp, args.mlp_batches, args.repeats, 1.05),
                                                         ('small CNN (course)', cnn, args.cnn_batches, 2*args.repeats, 1.02)):
        t, n = timings(full, make_model, data(n_batches), rounds), n_batches + n_batches//5
        ratio, diff = paired(t, 'learner')
        overheads[name], per_batch[name] = diff/n*1e6, statistics.median(t['hand'])/n*1e6
        noise = paired(t, 'hand again')[0]
        print(f"{name:<22}{n:>8}{min(t['hand']):>13.3f}{min(t['learner']):>16.3f}{ratio:>7.3f}{'≤'+str(target):>8}"
              f"{overheads[name]:>11.1f} µs{noise:>9.3f}  {'ok' if ratio <= target else 'OVER TARGET'}")
    mlp_over, cnn_batch = overheads['tiny MLP 784-50-10'], per_batch['small CNN (course)']
    print(f"(noise: the hand-written loop timed against itself the same way; ratios this far from 1 are noise)")
    print(f"per-batch framework overhead (tiny MLP; the CNN's figure is within its timing noise): {mlp_over:.1f} µs, "
          f"target ≤ 20 µs: {'ok' if mlp_over <= 20 else 'OVER TARGET'}; on the CNN's {cnn_batch/1e3:.1f} ms a batch "
          f"that is a ratio of {1 + max(mlp_over, 0)/cnn_batch:.4f}")
    t = timings(full, mlp, data(5), 10*args.repeats)
    fixed = paired(t, 'learner')[1]*1e3
    print(f"fixed cost of a fit (tiny MLP, a fit of 5 training and 1 validation batch, learner - hand, median of "
          f"{10*args.repeats} rounds; includes making the callbacks): {fixed:.2f} ms, target ≤ 3 ms: {'ok' if fixed <= 3 else 'OVER TARGET'}")

    parts = {'bare': partial(hand_fit, metrics=False),
             'hand-written loop': hand_fit,
             'TrainCB': lambda m, d: learner_fit(m, d, []),
             '+ DeviceCB': lambda m, d: learner_fit(m, d, full_cbs()[:1]),
             '+ MetricsCB(accuracy)': lambda m, d: learner_fit(m, d, full_cbs()[:2]),
             '+ ProgressCB': lambda m, d: learner_fit(m, d, full_cbs()),
             'straightforward design': lambda m, d: learner_fit(m, d, straight_cbs(), cls=StraightLearner)}
    t, n = timings(parts, linear, data(args.mlp_batches), args.repeats), args.mlp_batches + args.mlp_batches//5
    print(f"\nWhere the time goes, on one linear layer 784-10: µs per batch over a bare loop (forward, loss, backward, "
          f"step, zero_grad: {statistics.median(t['bare'])/n*1e6:.0f} µs a batch)")
    for k in list(parts)[1:]: print(f"  {k:<26}{paired(t, k, 'bare')[1]/n*1e6:>8.1f} µs")
    print("  (straightforward: run_cbs sorts and looks up at every event; every batch copied to the CPU and fed to the "
          "metrics; the loss shown on the bar after every batch)")

if __name__ == '__main__': main()
