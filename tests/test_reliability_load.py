"""Reliability III (issue 28, item 2): a load checks every part of a checkpoint against the learner before anything
changes: optimizer state, callback states, the log, the epoch range, finite weights; random bytes are called that."""
import os
from functools import partial
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import StepLR
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import SGD, Adam
from minitrain.learner import Learner, TrainCB, MetricsCB, Callback
from minitrain.schedule import EpochSchedCB
from minitrain.tracking import SaveModelCB, ResumeCB
from test_tracking import CountCB  # counts training batches; its count is in checkpoints

_g = torch.Generator().manual_seed(0)
X = torch.randn(64, 6, generator=_g)
Y = (X @ torch.randn(6, 3, generator=_g)).argmax(1)

class CrashCB(Callback):
    "Raise before the first training batch of epoch `epoch`."
    def __init__(self, epoch): self.epoch = epoch
    def before_batch(self, learn):
        if learn.training and (learn.epoch, learn.iter) == (self.epoch, 0): raise RuntimeError('crash')

def make_learner(seed=0, opt_func=Adam):
    set_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    dls = DataLoaders.from_dsets(Dataset(X, Y), Dataset(X[:32], Y[:32]), bs=16)
    return Learner(model, dls, F.cross_entropy, lr=0.01, cbs=[TrainCB(), MetricsCB()], opt_func=opt_func)

def snapshot(learn):
    "The weights and the optimizer's state, as copies."
    opt = {} if learn.opt is None else {id(p): {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                                        for p, s in learn.opt.state.items()}
    hypers = None if learn.opt is None else [{k: v for k, v in g.items() if k != 'params'} for g in learn.opt.param_groups]
    return [p.detach().clone() for p in learn.model.parameters()], opt, hypers, learn.epoch

def same(a, b):
    (wa, oa, ha, ea), (wb, ob, hb, eb) = a, b
    tensors = lambda d: [(k, i, v) for k, s in d.items() for i, v in s.items()]
    eq = lambda x, y: torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
    return (all(torch.equal(x, y) for x, y in zip(wa, wb)) and ha == hb and ea == eb and oa.keys() == ob.keys()
            and all(i == j and eq(x, y) for (_, i, x), (_, j, y) in zip(tensors(oa), tensors(ob))))

@pytest.fixture
def saved(tmp_path):
    "A checkpoint after an Adam epoch; `edit(f)` writes a copy changed by `f(ckpt)` and returns its path."
    learn = make_learner()
    learn.fit(1)
    path = learn.save(tmp_path/'good.pth')
    def edit(f, name='bad.pth'):
        ckpt = torch.load(path, weights_only=True)
        f(ckpt)
        torch.save(ckpt, tmp_path/name)
        return tmp_path/name
    return edit

def trained():
    learn = make_learner(seed=1)
    learn.fit(1)
    return learn

def refused(learn, path, match, **kw):
    before = snapshot(learn)
    with pytest.raises(ValueError, match=match): learn.load(path, **kw)
    assert same(snapshot(learn), before)

def set_(ckpt, keys, value):
    *head, last = keys
    for k in head: ckpt = ckpt[k]
    ckpt[last] = value

@pytest.mark.parametrize('keys,value,match', [
    (('opt', 'state', 0, 'grad_avg'), torch.zeros(3, 3), r"'grad_avg' of parameter 0 \(shape \[16, 6\]\) shape \[3, 3\]"),
    (('opt', 'state', 1, 'sqr_avg'), torch.full((16,), float('nan')), r"'sqr_avg' of parameter 1 .*not finite"),
    (('opt', 'state', 0, 'step'), -3, r"'step' of parameter 0 .*negative"),
    (('opt', 'state', 0, 'step'), 'x', r"'step' of parameter 0 .*a str, not a number"),
    (('opt', 'state', 9), {'step': 1}, r"entry 9 that is no parameter"),
    (('opt', 'param_groups', 0, 'lr'), float('nan'), r"lr=nan in group 0 \(not finite\)"),
    (('opt', 'param_groups', 0, 'eps'), 'small', r"eps='small' in group 0 \(a str, not a number\)"),
    (('opt', 'state'), [], r"not an optimizer's state_dict"),
])
def test_a_damaged_optimizer_state_is_refused_before_anything_changes(saved, keys, value, match):
    refused(trained(), saved(lambda c: set_(c, keys, value)), match)

@pytest.mark.parametrize('epoch,match', [(-5, r'epoch -5, but its epochs run -1 \(before training\) to 0'),
                                         (100, r'epoch 100, but its epochs run -1 \(before training\) to 0')])
def test_an_epoch_outside_the_fit_is_refused(saved, epoch, match):
    refused(trained(), saved(lambda c: set_(c, ['epoch'], epoch)), match)

def test_a_bad_n_epochs_is_refused(saved):
    refused(trained(), saved(lambda c: set_(c, ['n_epochs'], -2)), r'n_epochs -2, not a number of epochs')

@pytest.mark.parametrize('epoch', [-5, 7])
def test_resume_refuses_an_epoch_outside_the_fit(tmp_path, epoch):
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError): make_learner().fit(3, cbs=[SaveModelCB(path=path, every_epoch=True), CrashCB(2)])
    ckpt = torch.load(path, weights_only=True)
    ckpt['epoch'], ckpt['n_epochs'] = epoch, None if epoch > 0 else 3  # no n_epochs: this fit's own is the range
    torch.save(ckpt, path)
    learn = make_learner(seed=1)
    w = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match=f'epoch {epoch}'): learn.fit(3, cbs=ResumeCB(path))
    assert all(torch.equal(a, b) for a, b in zip(learn.model.parameters(), w))

@pytest.mark.parametrize('log', ['abc', [1, 2], [{'loss': 1.}], {'epoch': 0}])
def test_a_log_of_another_type_is_refused(saved, log):
    refused(trained(), saved(lambda c: set_(c, ['log'], log)), r'metrics log in .* not a list of MetricsCB entries')

@pytest.mark.parametrize('value', [float('nan'), float('inf')])
@pytest.mark.parametrize('model_only', [False, True])
def test_non_finite_weights_are_refused(saved, value, model_only):
    def poison(c): c['model']['2.bias'][1] = value
    refused(trained(), saved(poison), r'not finite \(NaN or inf\) in the checkpoint: 2.bias', model_only=model_only)

def test_weights_that_are_not_tensors_are_refused(saved):
    refused(trained(), saved(lambda c: set_(c, ['model', '0.weight'], [1., 2.])), 'not a dict of tensors')

@pytest.mark.parametrize('state,match', [
    ({'n': 'many'}, r"state of CountCB .*\['n'\]: a str, not a number"),
    ({}, r"state of CountCB .*the keys \[\], here \['n'\]"),
    ([3], r"state of CountCB .*a list, not a dict"),
    ({'n': float('nan')}, r"state of CountCB .*\['n'\]: not finite"),
])
def test_resume_checks_every_callback_state_before_loading_any(tmp_path, state, match):
    path = tmp_path/'run.pth'
    sched = lambda: EpochSchedCB(partial(StepLR, step_size=1, gamma=0.5))
    with pytest.raises(RuntimeError):
        make_learner(opt_func=SGD).fit(3, cbs=[sched(), CountCB(), SaveModelCB(path=path, every_epoch=True), CrashCB(2)])
    ckpt = torch.load(path, weights_only=True)
    ckpt['cbs']['CountCB'] = state
    torch.save(ckpt, path)
    learn = make_learner(seed=1, opt_func=SGD)
    w = [p.detach().clone() for p in learn.model.parameters()]
    cbs = [s := sched(), c := CountCB(), ResumeCB(path)]
    with pytest.raises(ValueError, match=match): learn.fit(3, cbs=cbs)
    assert all(torch.equal(a, b) for a, b in zip(learn.model.parameters(), w)) and c.n == 0
    assert s.schedo.last_epoch == 0  # the scheduler's state, checked with the rest, was not loaded either

def test_resume_refuses_a_damaged_scheduler_state(tmp_path):
    path = tmp_path/'run.pth'
    sched = lambda: EpochSchedCB(partial(StepLR, step_size=1, gamma=0.5))
    with pytest.raises(RuntimeError): make_learner(opt_func=SGD).fit(3, cbs=[sched(), SaveModelCB(path=path, every_epoch=True), CrashCB(2)])
    ckpt = torch.load(path, weights_only=True)
    ckpt['cbs']['EpochSchedCB']['last_epoch'] = 'two'
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"state of EpochSchedCB .*\['last_epoch'\]: a str, not a number"):
        make_learner(opt_func=SGD).fit(3, cbs=[sched(), ResumeCB(path)])

@pytest.mark.parametrize('data', [os.urandom(4096), b'\x80\x02' + os.urandom(200), b'hello world\n' * 50, b'PK\x03\x04junk'])
def test_random_bytes_are_not_a_checkpoint_and_the_message_does_not_suggest_unpickling(tmp_path, data):
    (tmp_path/'x.pth').write_bytes(data)
    with pytest.raises(ValueError) as e: make_learner().load(tmp_path/'x.pth')
    msg = str(e.value)
    assert 'not a checkpoint' in msg and 'weights_only' not in msg and 'arbitrary code' not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__

def test_a_good_checkpoint_still_loads(saved, tmp_path):
    learn = trained()
    learn.load(tmp_path/'good.pth')
    assert learn.epoch == 0

@pytest.mark.parametrize('opt_func', [partial(SGD, mom=0.9), torch.optim.Adam, torch.optim.Rprop,
                                      *([torch.optim.Adafactor] if hasattr(torch.optim, 'Adafactor') else [])])
def test_optimizers_whose_state_is_not_shaped_like_the_parameters_still_load(tmp_path, opt_func):
    learn = make_learner(opt_func=opt_func)
    learn.fit(1)
    path = learn.save(tmp_path/'c.pth')
    other = make_learner(seed=1, opt_func=opt_func)
    other.fit(1)
    other.load(path)
    assert all(torch.equal(a, b) for a, b in zip(other.model.parameters(), learn.model.parameters()))
