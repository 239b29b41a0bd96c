"Issue 28 (items 6 and 7): the original error wins, a cancelled batch adds no gradients, a non-finite fit says so."
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from minitrain.learner import *

class DLs:
    def __init__(self, train, valid): self.train, self.valid = train, valid

def data(n=4, bs=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(bs, 3, generator=g), torch.randint(0, 2, (bs,), generator=g)) for _ in range(n)]

def learner(cbs=(), n=4, **kw):
    torch.manual_seed(0)
    return Learner(nn.Linear(3, 2), DLs(data(n), data(2, seed=1)), F.cross_entropy, cbs=[TrainCB(), *cbs], **kw)

class Raise(Callback):
    def __init__(self, event, exc): self.event, self.exc = event, exc
    def __getattr__(self, nm):
        if nm == self.event: return self._raise
        raise AttributeError(nm)
    def _raise(self, learn): raise self.exc

@pytest.mark.parametrize('event', ['after_batch', 'before_epoch', 'after_fit', 'cleanup_epoch'])
def test_the_first_error_wins_over_a_failing_cleanup_fit(event):
    learn = learner([Raise(event, ValueError('the cause')), Raise('cleanup_fit', KeyError('cleanup broke'))])
    with pytest.raises(ValueError, match='the cause') as ei: learn.fit(1)
    assert any('cleanup_fit' in n and 'cleanup broke' in n for n in ei.value.__notes__)
    assert learn.fit_status == 'failed' and isinstance(learn.fit_error, ValueError)

def test_an_interrupt_wins_over_a_failing_cleanup():
    "Ctrl-C (KeyboardInterrupt) during a fit, then a cleanup_fit that fails: the interrupt is what fit raises."
    learn = learner([Raise('after_batch', KeyboardInterrupt()), Raise('cleanup_fit', KeyError('cleanup broke'))])
    with pytest.raises(KeyboardInterrupt) as ei: learn.fit(1)
    assert any('cleanup broke' in n for n in ei.value.__notes__) and learn.fit_status == 'failed'

def test_a_failing_cleanup_after_a_good_fit_is_failed():
    learn = learner([Raise('cleanup_fit', KeyError('cleanup broke'))])
    with pytest.raises(KeyError): learn.fit(1)
    assert learn.fit_status == 'failed' and isinstance(learn.fit_error, KeyError)

def test_the_first_error_wins_in_every_phase():
    learn = learner([Raise('after_loss', ValueError('the cause')), Raise('cleanup_batch', KeyError('batch cleanup')),
                     Raise('cleanup_epoch', TypeError('epoch cleanup'))])
    with pytest.raises(ValueError, match='the cause') as ei: learn.fit(1)
    notes = '\n'.join(ei.value.__notes__)
    assert 'batch cleanup' in notes and 'epoch cleanup' in notes
    assert learn.fit_status == 'failed'

class CancelAt(Callback):
    "Raise CancelBatchException at `event` of the first training batch."
    def __init__(self, event): self.event, self.done = event, False
    def __getattr__(self, nm):
        if nm == self.event: return self._cancel
        raise AttributeError(nm)
    def _cancel(self, learn):
        if learn.training and not self.done:
            self.done = True
            raise CancelBatchException()

class GradsAtBackward(Callback):
    "Record the gradient of the weight right after each training backward pass (before the other callbacks)."
    order = -1
    def before_fit(self, learn): self.g = []
    def after_backward(self, learn): self.g.append(learn.model.weight.grad.clone())

@pytest.mark.parametrize('event', ['after_backward', 'before_step', 'after_step'])
def test_a_batch_cancelled_after_backward_adds_no_gradients_to_the_next(event):
    rec = GradsAtBackward()
    learn = learner([CancelAt(event), rec], n=2, opt_func=torch.optim.SGD)
    learn.fit(1, valid=False)
    (x0, y0), (x1, y1) = learn.dls.train
    torch.manual_seed(0)
    fresh = nn.Linear(3, 2)
    if event == 'after_step':  # the first batch stepped before it was cancelled
        opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
        F.cross_entropy(fresh(x0), y0).backward(); opt.step(); opt.zero_grad()
    F.cross_entropy(fresh(x1), y1).backward()
    assert torch.allclose(rec.g[1], fresh.weight.grad, atol=1e-6)  # the second batch's own gradient, nothing added

def test_a_cancelled_batch_keeps_the_accumulated_gradients():
    "Accumulating (CancelStepException), then a batch cancelled after its backward: only its gradients go."
    class Accum(Callback):
        def before_step(self, learn): raise CancelStepException()
    class CancelSecond(Callback):
        def after_backward(self, learn):
            if learn.training and learn.iter == 1: raise CancelBatchException()
    rec = GradsAtBackward()
    learn = learner([Accum(), CancelSecond(), rec], n=2, opt_func=torch.optim.SGD)
    learn.fit(1, valid=False)
    assert torch.allclose(learn.model.weight.grad, rec.g[0])  # the first batch's, without the cancelled one's

# ---- StopIteration in a dataset's __getitem__ (item 6) --------------------------------------------------------------

from minitrain.data import DataLoader, Dataset, collate

class Exhausted(Dataset):
    "Item 5 raises StopIteration (a next() on an exhausted iterator)."
    def __getitem__(self, i): return next(iter(())) if i == 5 else super().__getitem__(i)

@pytest.mark.parametrize('num_workers', [0, 1])
def test_stop_iteration_in_getitem_is_an_error_naming_the_item(num_workers):
    dl = DataLoader(Exhausted(torch.randn(8, 3), torch.arange(8)), bs=4, num_workers=num_workers)
    with pytest.raises(RuntimeError, match=r'StopIteration for item 5'): list(dl)

def test_stop_iteration_in_collate_is_an_error():
    def bad_collate(b): raise StopIteration
    dl = DataLoader(Exhausted(torch.randn(8, 3), torch.arange(8)), bs=4, collate_fn=bad_collate)
    with pytest.raises(RuntimeError, match='collate_fn raised StopIteration'): list(dl)

def test_stop_iteration_in_getitem_fails_the_fit():
    ds = Exhausted(torch.randn(8, 3), torch.arange(8) % 2)
    learn = Learner(nn.Linear(3, 2), DLs(DataLoader(ds, bs=4), DataLoader(ds, bs=4)), F.cross_entropy, cbs=[TrainCB()])
    with pytest.raises(RuntimeError, match='item 5'): learn.fit(1)
    assert learn.fit_status == 'failed'

# ---- a loss that becomes non-finite after the first batch (item 6) ------------------------------------------------------

class NaNAt(Callback):
    "Make the loss of training batch `it` of epoch `epoch` non-finite (after the first-batch check)."
    def __init__(self, epoch=0, it=2, value=float('nan')): self.epoch, self.it, self.value = epoch, it, value
    def after_loss(self, learn):
        if learn.training and learn.epoch == self.epoch and learn.iter == self.it: learn.loss = learn.loss * self.value

@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_a_loss_that_becomes_non_finite_fails_the_fit_naming_the_epoch(value):
    learn = learner([NaNAt(epoch=1, value=value)])
    with pytest.raises(FloatingPointError, match='training epoch 1') as ei: learn.fit(3)
    assert 'weight' in str(ei.value) and 'TerminateOnNaNCB' in str(ei.value)
    assert learn.fit_status == 'failed' and learn.fit_error is ei.value and learn.epoch == 1  # epoch 2 never ran

def test_terminate_on_nan_still_stops_first_and_keeps_the_weights(capsys):
    from minitrain.tracking import TerminateOnNaNCB
    learn = learner([NaNAt(epoch=1), TerminateOnNaNCB()])
    learn.fit(3)
    assert 'TerminateOnNaNCB: the loss is nan at epoch 1' in capsys.readouterr().out
    assert learn.fit_status == 'cancelled' and all(torch.isfinite(p).all() for p in learn.model.parameters())

def test_a_finite_fit_is_done():
    learn = learner()
    learn.fit(2)
    assert learn.fit_status == 'done'
