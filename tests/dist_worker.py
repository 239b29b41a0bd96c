"""One rank of the multi-process tests in test_distributed.py, and a complete script to launch with torchrun:

    torchrun --nproc_per_node=2 tests/dist_worker.py OUT_DIR [--fail-at N]

Trains a small classifier with `DistributedCB` (each rank starts from different weights: DDP must copy
rank 0's), then runs a second, validation-only fit in the same process group, inside an `except` block.
Each rank saves its weights, metrics logs and the training samples it saw to OUT_DIR/rank<r>.pt. With
`--fail-at N`, rank 1 raises at training batch N of the first epoch instead. With `--agree`, the ranks
instead make decisions alone (lr_find, a NaN loss on one rank, cancels raised on one rank, rank-0-only saves,
get_preds inside and after a fit, a skipped step, a batch skipped before a forward pass that talks to the other ranks)
and record how each fit ended.
"""
import argparse, os
from datetime import timedelta
from pathlib import Path
import torch
import torch.distributed as dist
from torch import nn
import torch.nn.functional as F
from torcheval.metrics import MulticlassAccuracy
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import SGD
from minitrain.learner import Learner, Callback, TrainCB, MetricsCB, ProgressCB
from minitrain.learner import CancelStepException, CancelBatchException, CancelEpochException, CancelFitException
from minitrain.tracking import TerminateOnNaNCB
import minitrain.schedule, minitrain.inference  # lr_find, get_preds
from minitrain.distributed import DistributedCB

N_TRAIN, N_VALID, BS, EPOCHS, LR, SEED = 64, 21, 8, 2, 0.5, 1234

def make_dls(bs: int) -> DataLoaders:
    "The same data in every process: training batches of `bs` (shuffled), validation batches of `2*bs`."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VALID, 4, generator=g)
    y = (x @ torch.randn(4, 3, generator=g)).argmax(1)
    return DataLoaders.from_dsets(Dataset(x[:N_TRAIN], y[:N_TRAIN]), Dataset(x[N_TRAIN:], y[N_TRAIN:]), bs=bs)

class SeenCB(Callback):
    "Record, per training epoch, the indices in `ds` of the samples in each training batch."
    def __init__(self, ds):
        self.ids, self.seen = {tuple(r.tolist()): i for i, r in enumerate(ds.x)}, []
    def before_epoch(self, learn):
        if learn.training: self.seen.append([])
    def after_batch(self, learn):
        if learn.training: self.seen[-1].append([self.ids[tuple(r.tolist())] for r in learn.batch[0]])

def make_learner(dls, cbs, init_seed=0, norm=False) -> Learner:
    "A small MLP classifier (with a BatchNorm layer if `norm`), initialised from `init_seed`, with accuracy and a progress table."
    torch.manual_seed(init_seed)  # (set_seed would also do; its first call costs seconds importing torch's compiler)
    model = nn.Sequential(nn.Linear(4, 16), *([nn.BatchNorm1d(16)] if norm else []), nn.ReLU(), nn.Linear(16, 3))
    return Learner(model, dls, F.cross_entropy, lr=LR, opt_func=SGD,
                   cbs=[TrainCB(), MetricsCB(MulticlassAccuracy(num_classes=3)), ProgressCB(bar=False), *cbs])

class HooksCB(Callback):
    "Record, per epoch, which of MetricsCB's methods and hooks are set on the instance (what other callbacks set)."
    def __init__(self): self.seen = []
    def after_epoch(self, learn):
        self.seen.append(sorted(k for k in ('_log', 'compute', 'merge', 'show') if k in vars(learn.metrics)))

class FailCB(Callback):
    "Raise on rank 1 at training batch `at`."
    def __init__(self, at): self.at = at
    def after_batch(self, learn):
        if learn.rank == 1 and learn.training and learn.iter == self.at:
            raise RuntimeError(f"rank 1 fails on purpose at batch {self.at}")

class AloneCB(Callback):
    "On rank `rank`, at `event` of batch `it` (of epoch `epoch`, training), raise `exc` (or make the loss NaN)."
    order = -1  # before TerminateOnNaNCB looks at the loss
    def __init__(self, rank, event, it, exc=None, epoch=0, training=True):
        self.rank, self.it, self.exc, self.epoch, self.training = rank, it, exc, epoch, training
        setattr(self, event, self._act)
    def _act(self, learn):
        if (learn.rank, learn.training, learn.iter, learn.epoch) != (self.rank, self.training, self.it, self.epoch): return
        if self.exc is None: learn.loss = learn.loss*float('nan')
        else: raise self.exc()

class PredsCB(Callback):
    "At the end of the last epoch: predictions of every rank, and of rank 0 alone; a save on rank 0 alone."
    def __init__(self, out): self.out, self.preds, self.main_preds = out, None, None
    def after_epoch(self, learn):
        if learn.training or learn.epoch != learn.n_epochs - 1: return
        self.preds = learn.get_preds()[0]
        if learn.is_main:
            self.main_preds = learn.get_preds()[0]
            learn.save(self.out/'inside.pth')

def agree(args):
    "Each rank decides alone; record how every fit ended, on every rank."
    dls = make_dls(BS)
    learn = make_learner(dls, [DistributedCB(timeout=timedelta(seconds=60))], init_seed=int(os.environ['RANK']))
    res, params = {}, {}
    def run(name, *cbs, n=2, learn=learn):
        learn.fit(n, cbs=list(cbs))
        res[name] = (learn.fit_status, learn.epoch, learn.iter, learn.training)
        params[name] = [p.detach().clone() for p in learn.model.parameters()]  # before the next fit's DDP copies rank 0's
    sug = learn.lr_find(plot=False, max_epochs=30)
    res['lr_find'] = len(sug.losses)
    run('nan', TerminateOnNaNCB(), AloneCB(1, 'after_loss', 3))
    run('cancel_fit', AloneCB(1, 'after_loss', 2, CancelFitException))
    run('cancel_fit_after_batch', AloneCB(0, 'after_batch', 2, CancelFitException))
    run('cancel_epoch', AloneCB(1, 'before_backward', 3, CancelEpochException), n=1)
    run('cancel_fit_in_validation', AloneCB(1, 'after_batch', 0, CancelFitException, training=False))
    run('cancel_step', AloneCB(1, 'before_step', 2, CancelStepException), n=1)
    run('cancel_batch_after_backward', AloneCB(1, 'after_backward', 1, CancelBatchException), n=1)
    normed = make_learner(dls, [DistributedCB(timeout=timedelta(seconds=60))], init_seed=learn.rank, norm=True)
    run('cancel_batch_before_forward', AloneCB(1, 'before_batch', 2, CancelBatchException), n=1, learn=normed)
    preds = PredsCB(args.out)
    run('cancel_batch', AloneCB(0, 'after_predict', 1, CancelBatchException), preds)
    if learn.is_main: learn.save(args.out/'after.pth')  # rank 0 alone, after the fit
    torch.save(dict(res=res, params=params, weights=learn.model.state_dict(), preds=preds.preds, main_preds=preds.main_preds,
                    after=learn.get_preds()[0], lr_losses=sug.losses), args.out/f'rank{learn.rank}.pt')

class StopAtCB(Callback):
    "Stop the fit (on every rank) at the end of epoch `epoch`, after the checkpoint is written."
    order = 100
    def __init__(self, epoch): self.epoch = epoch
    def after_epoch(self, learn):
        if not learn.training and learn.epoch == self.epoch: raise CancelFitException()

def resume(args):
    "Train with dropout (each rank its own random stream) and the default seed; stop after epoch 1, resume, compare."
    from minitrain.tracking import SaveModelCB, ResumeCB
    def run(cbs, path):
        torch.manual_seed(0)
        dls = make_dls(BS)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        learn = Learner(model, dls, F.cross_entropy, lr=LR, opt_func=SGD,
                        cbs=[TrainCB(), MetricsCB(MulticlassAccuracy(num_classes=3)), DistributedCB(),
                             SaveModelCB(path=path, every_epoch=True), *cbs])
        torch.manual_seed(100 + int(os.environ['RANK']))  # each rank draws its own dropout masks
        learn.fit(3)
        return learn
    whole = run([], args.out/'whole.pth')
    run([StopAtCB(1)], args.out/'part.pth')
    resumed = run([ResumeCB(args.out/'part.pth')], args.out/'part.pth')
    torch.save(dict(whole=whole.model.state_dict(), resumed=resumed.model.state_dict(), log=whole.metrics.log,
                    resumed_log=resumed.metrics.log), args.out/f'rank{whole.rank}.pt')

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('out', type=Path)
    ap.add_argument('--fail-at', type=int)
    ap.add_argument('--agree', action='store_true')
    ap.add_argument('--resume', action='store_true')
    args = ap.parse_args()
    if args.agree: return agree(args)
    if args.resume: return resume(args)
    dls = make_dls(BS)
    seen, hooks = SeenCB(dls.train.ds), HooksCB()
    learn = make_learner(dls, [DistributedCB(seed=SEED, timeout=timedelta(seconds=60)), seen, hooks],
                         init_seed=int(os.environ.get('RANK', 0)))
    try: learn.fit(EPOCHS, cbs=[] if args.fail_at is None else [FailCB(args.fail_at)])
    finally: print(f"rank {learn.rank}: process group up after fit: {dist.is_initialized()}", flush=True)
    train_log = learn.metrics.log
    try: raise KeyError('an error the script handles')
    except KeyError: learn.fit(1, train=False)  # this fit did not fail: the group stays up
    print(f"rank {learn.rank}: process group up after validation: {dist.is_initialized()}", flush=True)
    torch.save(dict(is_main=learn.is_main, weights=learn.model.state_dict(), log=train_log,
                    valid_log=learn.metrics.log, seen=seen.seen, hooks=hooks.seen,
                    hooks_after=sorted(k for k in ('_log', 'compute', 'merge', 'show') if k in vars(learn.metrics))),
               args.out/f'rank{learn.rank}.pt')

if __name__ == '__main__': main()
