import math
from functools import partial
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import SGD, Adam
from minitrain.learner import (Learner, TrainLearner, TrainCB, DeviceCB, MetricsCB, Callback, SingleBatchCB,
                               CancelEpochException, CancelBackwardException)
from minitrain.schedule import ParamSchedulerCB, BatchSchedCB, RecorderCB, sched_lin, sched_cos, rec_lr, rec_mom, rec_loss
from minitrain.accel import MixedPrecisionCB, GradClipCB, GradAccumCB, ChannelsLastCB

def data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, x @ torch.randn(6, 1, generator=g) + 0.1*torch.randn(n, 1, generator=g)

def mlp(): return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))

def learner(bs, *cbs, n=48, model=mlp, opt_func=SGD, lr=0.05, shuffle=False, cls=Learner):
    "A regression learner on `n` fixed examples, the same initial weights every time."
    x, y = data(n)
    set_seed(0)
    dls = DataLoaders.from_dsets(Dataset(x, y), Dataset(x[:16], y[:16]), bs=bs, shuffle=shuffle)
    return cls(model(), dls, F.mse_loss, lr=lr, cbs=list(cbs), opt_func=opt_func)

def images(n=32, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)

def convnet(): return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                                    nn.Flatten(), nn.Linear(8*2*2, 4))

def image_learner(bs, *cbs, n=32, lr=0.1, opt_func=partial(SGD, mom=0.9)):
    x, y = images(n)
    set_seed(0)
    dls = DataLoaders.from_dsets(Dataset(x, y), Dataset(x[:16], y[:16]), bs=bs, shuffle=False)
    return Learner(convnet(), dls, F.cross_entropy, lr=lr, cbs=list(cbs), opt_func=opt_func)

def weights(learn): return [v.detach().clone() for v in learn.model.state_dict().values()]

def cpu_scaler(init_scale=2.**16): return torch.amp.GradScaler('cpu', init_scale=init_scale, growth_interval=10**6)

class StepCounter(Callback):
    "Count the optimizer steps that ran (the step phase reached `after_step`)."
    def before_fit(self, learn): self.n = 0
    def after_step(self, learn): self.n += 1

# --- bad input

@pytest.mark.parametrize('n', [0, -1, 1.5, True, '2', None])
def test_grad_accum_bad_n(n):
    with pytest.raises(ValueError, match='integer >= 1'): GradAccumCB(n)

@pytest.mark.parametrize('kw', [dict(max_norm=0), dict(max_norm=-1.), dict(max_norm=math.nan), dict(max_norm='1'),
                                dict(max_norm=None), dict(norm_type=0), dict(norm_type=-2)])
def test_grad_clip_bad_args(kw):
    with pytest.raises(ValueError, match='must be a positive number'): GradClipCB(**kw)

def test_grad_clip_accepts_inf():
    cb = GradClipCB(max_norm=math.inf, norm_type=math.inf)
    assert cb.max_norm == cb.norm_type == math.inf

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, 'bf16', torch.int8])
def test_mixed_precision_bad_dtype(dtype):
    with pytest.raises(ValueError, match='torch.float16 or torch.bfloat16'): MixedPrecisionCB(dtype)

def test_mixed_precision_bad_scaler():
    with pytest.raises(TypeError, match='GradScaler'): MixedPrecisionCB(scaler='2**16')

def test_float16_on_cpu_is_refused_before_training():
    learn = learner(8, MixedPrecisionCB(torch.float16))
    w = weights(learn)
    with pytest.raises(ValueError, match='bfloat16'): learn.fit(1)
    assert all(torch.equal(a, b) for a, b in zip(w, weights(learn))) and not torch.is_autocast_enabled('cpu')

def test_mixed_precision_replaces_train_cb():
    with pytest.raises(ValueError, match='keep only one'): learner(8, TrainCB(), MixedPrecisionCB()).fit(1)

def test_mixed_precision_refuses_learner_with_its_own_step():
    with pytest.raises(TypeError, match='use Learner with MixedPrecisionCB'): learner(8, MixedPrecisionCB(), cls=TrainLearner).fit(1)

def test_grad_accum_needs_a_length():
    class NoLen:
        def __init__(self, dl): self.dl = dl
        def __iter__(self): return iter(self.dl)
    learn = learner(8, TrainCB(), GradAccumCB(2))
    learn.dls.train = NoLen(learn.dls.train)
    with pytest.raises(TypeError, match='with a length'): learn.fit(1)

# --- gradient accumulation

@pytest.mark.parametrize('n_acc,bs,n', [(3, 4, 48), (4, 4, 48), (5, 4, 48), (2, 8, 40), (1, 6, 48)])
@pytest.mark.parametrize('opt_func', [SGD, partial(SGD, mom=0.9), Adam, partial(torch.optim.SGD, momentum=0.9)])
def test_accumulation_matches_a_large_batch(n_acc, bs, n, opt_func):
    "n batches of size b give the weights of batches of size n*b, also when the epoch's last group is shorter."
    big = learner(n_acc*bs, TrainCB(), n=n, opt_func=opt_func)
    acc = learner(bs, TrainCB(), GradAccumCB(n_acc), n=n, opt_func=opt_func)
    big.fit(3, valid=False); acc.fit(3, valid=False)
    assert not all(torch.equal(a, b) for a, b in zip(weights(big), weights(learner(bs, n=n))))  # it trained
    for a, b in zip(weights(big), weights(acc)): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

def test_accumulation_of_one_changes_nothing():
    def run(*cbs):
        learn = learner(8, TrainCB(), *cbs, shuffle=True)  # seeds, so both runs shuffle alike
        learn.fit(2)
        return weights(learn)
    assert all(torch.equal(p, q) for p, q in zip(run(), run(GradAccumCB(1))))

@pytest.mark.parametrize('n_acc', [1, 2, 5, 6, 7])
def test_accumulation_steps_per_epoch_and_leaves_no_gradients(n_acc):
    steps, leftover = StepCounter(), []
    class Grads(Callback):
        def after_epoch(self, learn):
            if learn.training: leftover.append(any(p.grad is not None and p.grad.any() for p in learn.model.parameters()))
    learn = learner(8, TrainCB(), GradAccumCB(n_acc), steps, Grads())  # 6 batches an epoch
    learn.fit(2)
    assert steps.n == 2 * math.ceil(6 / n_acc) and leftover == [False, False]

def test_metrics_and_recorders_see_the_unscaled_loss():
    def run(*cbs):
        m, rec = MetricsCB(), RecorderCB(loss=rec_loss)
        learner(8, TrainCB(), m, rec, *cbs, lr=0.).fit(1)  # lr 0: the same losses with and without accumulation
        return [d['loss'] for d in m.log], rec.recs['loss']
    assert run() == run(GradAccumCB(4))

def test_backward_sees_the_loss_divided_by_the_group_size():
    seen = []
    class Spy(Callback):
        order = 100
        def before_backward(self, learn): seen.append(learn.loss.item())
        def after_batch(self, learn): seen[-1] /= learn.loss.item()
    learner(8, TrainCB(), GradAccumCB(4), Spy(), lr=0.).fit(1, valid=False)  # 6 batches: groups of 4 and 2
    assert seen == pytest.approx([1/4]*4 + [1/2]*2)

def test_accumulation_when_another_callback_cancels_backward():
    "A backward cancelled before GradAccumCB's before_backward leaves the loss alone (no stale loss restored)."
    class SkipOdd(Callback):
        order = GradAccumCB.order - 1
        def before_backward(self, learn):
            if learn.iter % 2: raise CancelBackwardException()
    def run(*cbs):
        rec = RecorderCB(loss=rec_loss)
        learner(8, TrainCB(), SkipOdd(), rec, *cbs, lr=0.).fit(1, valid=False)
        return rec.recs['loss']
    assert run() == run(GradAccumCB(3))

def test_cancelled_epoch_drops_its_unfinished_group():
    grads = []
    class CancelAt(Callback):
        def after_batch(self, learn):
            if learn.training and learn.epoch == 0 and learn.iter == 1: raise CancelEpochException()
        def before_epoch(self, learn):
            grads.append(any(p.grad is not None and p.grad.any() for p in learn.model.parameters()))
    steps = StepCounter()
    learner(8, TrainCB(), GradAccumCB(4), CancelAt(), steps).fit(2)
    assert grads == [False]*4 and steps.n == 2  # epoch 0: cut after 2 batches, no step; epoch 1: groups of 4 and 2

def test_schedulers_under_accumulation():
    "A torch scheduler counts optimizer steps; ParamSchedulerCB still sets hypers every batch."
    n_acc, epochs = 4, 3
    total = epochs * math.ceil(6 / n_acc)
    bs = BatchSchedCB(partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=total, cycle_momentum=False))
    rec = RecorderCB(lr=rec_lr, mom=rec_mom)
    learn = learner(8, TrainCB(), GradAccumCB(n_acc), bs, ParamSchedulerCB(mom=sched_cos(0.95, 0.85)), rec,
                    opt_func=partial(SGD, mom=0.9))
    learn.fit(epochs)  # OneCycleLR raises if stepped more than total_steps times
    assert bs.schedo.last_epoch == total
    lrs = rec.recs['lr']
    assert len(lrs) == epochs * 6 and lrs[:4] == [lrs[0]]*4 and lrs[4] != lrs[0]  # the lr changes after each step
    assert rec.recs['mom'] == pytest.approx([sched_cos(0.95, 0.85)(i/18) for i in range(18)])

# --- mixed precision

def test_bfloat16_autocast_region():
    seen = {}
    class Spy(Callback):
        order = 100
        def after_predict(self, learn): seen['predict'] = (torch.is_autocast_enabled('cpu'), learn.preds.dtype)
        def after_loss(self, learn): seen['loss'] = (torch.is_autocast_enabled('cpu'), learn.preds.dtype, learn.loss.dtype)
        def after_batch(self, learn): seen['grad'] = learn.model[0].weight.grad
    mp = MixedPrecisionCB(force=True)
    learn = learner(8, mp, Spy())
    learn.fit(1, cbs=[SingleBatchCB()])
    assert mp.dtype == torch.bfloat16 and mp.device_type == 'cpu' and not mp.scaler.is_enabled()
    assert seen['predict'] == (True, torch.bfloat16) and seen['loss'] == (False, torch.float32, torch.float32)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters()) and not torch.is_autocast_enabled('cpu')

def test_mixed_precision_trains_close_to_float32():
    a, b = image_learner(8, TrainCB()), image_learner(8, MixedPrecisionCB(force=True))
    a.fit(2); b.fit(2)
    for p, q in zip(weights(a), weights(b)): torch.testing.assert_close(p, q, rtol=0.05, atol=0.02)
    assert not all(torch.equal(p, q) for p, q in zip(weights(a), weights(b)))  # bfloat16 did run

def test_autocast_is_left_when_a_batch_fails():
    class Boom(nn.Module):
        def forward(self, x): raise RuntimeError('boom')
    learn = learner(8, MixedPrecisionCB(force=True), model=lambda: nn.Sequential(nn.Linear(6, 1), Boom()))
    with pytest.raises(RuntimeError, match='boom'): learn.fit(1)
    assert not torch.is_autocast_enabled('cpu')

def test_overflowing_steps_are_skipped_and_counted():
    "A CPU scaler starting at 2**127 overflows until it has halved enough: those steps change nothing and are counted."
    scaler, steps, ws = cpu_scaler(2.**127), StepCounter(), []
    class Watch(Callback):
        order = 100
        def after_batch(self, learn): ws.append(weights(learn))
    mp = MixedPrecisionCB(torch.bfloat16, scaler=scaler, force=True)
    sched = BatchSchedCB(partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.9))
    learn = learner(4, mp, steps, Watch(), sched)
    w0 = weights(learn)
    learn.fit(2, valid=False)
    n_batches = 2 * 12
    assert 0 < mp.n_skipped < 5 and mp.n_skipped == 127 - math.log2(scaler.get_scale()) == math.log2(2.**127 / mp.scale)
    assert steps.n == n_batches - mp.n_skipped == sched.schedo.last_epoch
    moved = [not all(torch.equal(a, b) for a, b in zip(prev, cur)) for prev, cur in zip([w0] + ws, ws)]
    assert not moved[0] and moved.count(False) == mp.n_skipped

def test_gradients_are_unscaled_before_clipping():
    "With a scaler, clipping sees (and the optimizer uses) the same gradients as without one."
    def run(scaler, *cbs):
        clip = GradClipCB(0.5)
        learn = learner(8, MixedPrecisionCB(torch.bfloat16, scaler=scaler, force=True), clip, *cbs)
        learn.fit(2)
        return learn, clip.norms
    (a, na), (b, nb), (c, nc) = run(None), run(cpu_scaler()), run(cpu_scaler(), GradAccumCB(4))
    assert len(na) == len(nb) == 12 and len(nc) == 4 and max(na) > 0.5
    assert na == pytest.approx(nb, rel=1e-6)
    for p, q in zip(weights(a), weights(b)): torch.testing.assert_close(p, q)
    assert max(nc) < 2 * max(na)  # scaled gradients would have norms ~2**16 times larger

def test_mixed_precision_with_accumulation_unscales_once_per_step():
    a, b = learner(8, MixedPrecisionCB(scaler=cpu_scaler(), force=True), GradAccumCB(3)), learner(8, MixedPrecisionCB(force=True), GradAccumCB(3))
    a.fit(2); b.fit(2)
    for p, q in zip(weights(a), weights(b)): torch.testing.assert_close(p, q)

# --- clipping

@pytest.mark.parametrize('norm_type', [2., 1., math.inf])
def test_clip_records_the_norm_before_clipping(norm_type):
    norms = {}
    def norm(learn): return torch.nn.utils.get_total_norm([p.grad for p in learn.model.parameters()], norm_type).item()
    class Before(Callback):
        order = GradClipCB.order - 1
        def before_step(self, learn): norms['before'] = norm(learn)
    class After(Callback):
        order = GradClipCB.order + 1
        def before_step(self, learn): norms['after'] = norm(learn)
    clip = GradClipCB(max_norm=0.05, norm_type=norm_type)
    learner(8, TrainCB(), clip, After(), Before()).fit(1, valid=False, cbs=[SingleBatchCB()])
    assert clip.norms == pytest.approx([norms['before']]) and norms['before'] > 0.05
    assert norms['after'] == pytest.approx(0.05, rel=1e-4)

def test_clip_leaves_small_gradients_alone():
    a, b = learner(8, TrainCB()), learner(8, TrainCB(), clip := GradClipCB(max_norm=1e6))
    a.fit(2); b.fit(2)
    assert all(torch.equal(p, q) for p, q in zip(weights(a), weights(b))) and len(clip.norms) == 12

# --- channels-last

def test_channels_last_model_and_batches():
    seen = []
    class Spy(Callback):
        def after_predict(self, learn): seen.append((learn.batch[0].is_contiguous(memory_format=torch.channels_last),
                                                     learn.batch[1].dtype, isinstance(learn.batch, tuple)))
    a, b = image_learner(8, TrainCB()), image_learner(8, TrainCB(), Spy(), ChannelsLastCB())
    a.fit(2); b.fit(2)
    assert b.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not b.model[0].weight.is_contiguous() and seen and all(s == (True, torch.int64, True) for s in seen)
    for p, q in zip(weights(a), weights(b)): torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)

def test_channels_last_leaves_other_inputs_alone():
    learn = learner(8, TrainCB(), ChannelsLastCB())
    learn.fit(1, cbs=[SingleBatchCB()])
    assert learn.batch[0].shape == (8, 6) and learn.batch[0].is_contiguous()

# --- together

def combo(order, n_epochs=2):
    "Everything at once, with the callbacks listed in `order`: the final weights, lrs, norms, metrics log and steps."
    total = n_epochs * math.ceil(8 / 3)
    cbs = [MixedPrecisionCB(torch.bfloat16, scaler=cpu_scaler(), force=True), GradClipCB(1.), GradAccumCB(3), ChannelsLastCB(),
           DeviceCB('cpu'), MetricsCB(), RecorderCB(lr=rec_lr, mom=rec_mom),
           BatchSchedCB(partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.2, total_steps=total, cycle_momentum=False)),
           ParamSchedulerCB(mom=sched_lin(0.95, 0.85)), StepCounter()]
    learn = image_learner(4, *[cbs[i] for i in order], opt_func=partial(SGD, mom=0.9))
    learn.fit(n_epochs)
    return weights(learn), cbs[6].recs, cbs[1].norms, cbs[5].log, cbs[9].n

@pytest.mark.parametrize('seed', range(4))
def test_any_order_gives_the_same_training(seed):
    ref = combo(range(10))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()
    got = combo(order)
    assert all(torch.equal(a, b) for a, b in zip(ref[0], got[0]))
    assert ref[1:] == got[1:] and ref[4] == 2 * 3 and len(ref[1]['lr']) == 16

# --- bfloat16 on the CPU only where it is faster

import warnings
import minitrain.accel as accel
from minitrain.accel import cpu_bf16_speed, bf16_fast_here

def test_bf16_probe_is_measured_once_and_leaves_rng_alone():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    r = cpu_bf16_speed()
    assert r > 0 and cpu_bf16_speed() == r and torch.equal(torch.get_rng_state(), state)
    fast, why = bf16_fast_here('cpu')
    assert fast == (r < 1) and f'{r:.2f}x' in why

@pytest.mark.parametrize('speed, force, on', [(3.0, False, False), (3.0, True, True), (0.6, False, True)])
def test_mixed_precision_uses_bf16_only_where_fast(monkeypatch, speed, force, on):
    monkeypatch.setattr(accel, '_bf16_speed', {'cpu': speed})
    mp = MixedPrecisionCB(force=force)
    seen = []
    class Spy(Callback):
        order = 30
        def after_predict(self, learn): seen.append((torch.is_autocast_enabled('cpu'), learn.preds.dtype))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        learner(8, mp, Spy()).fit(1, valid=False)
    assert mp.enabled == on and all(s == (on, torch.bfloat16 if on else torch.float32) for s in seen)
    slow = [str(x.message) for x in w if 'MixedPrecisionCB' in str(x.message)]
    assert bool(slow) == (not on) and (not slow or ('3.00x' in slow[0] and 'force=True' in slow[0]))
