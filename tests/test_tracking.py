"Trackers, checkpoints and resume: NaN stops, early stopping, best weights, checked atomic checkpoints, exact resumes."
import operator, os, random, signal, subprocess, sys, textwrap
from functools import partial
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR, StepLR
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoader, DataLoaders, Sampler, BatchSampler
from minitrain.optimizer import SGD, Adam
from minitrain.learner import Learner, MomentumLearner, TrainCB, MetricsCB, Callback
from minitrain.schedule import BatchSchedCB, EpochSchedCB, RecorderCB, rec_lr
from minitrain.tracking import TerminateOnNaNCB, TrackerCB, EarlyStoppingCB, SaveModelCB, ResumeCB, monitor_names

BS, N_EPOCHS = 16, 4
_g = torch.Generator().manual_seed(0)  # the data does not depend on the seed of a run
X = torch.randn(96, 6, generator=_g)
Y = (X @ torch.randn(6, 3, generator=_g)).argmax(1)
XV, YV = X[:32] + 0.5*torch.randn(32, 6, generator=_g), Y[:32]
N_ITER = len(X)//BS  # 6 training batches an epoch

def make_dls(own_generator=None):
    "Shuffled training batches; from the global RNG, or from a generator seeded with `own_generator`."
    if own_generator is None: return DataLoaders.from_dsets(Dataset(X, Y), Dataset(XV, YV), bs=BS)
    sampler = Sampler(Dataset(X, Y), shuffle=True, generator=torch.Generator().manual_seed(own_generator))
    return DataLoaders(DataLoader(Dataset(X, Y), BatchSampler(sampler, BS)), DataLoader(Dataset(XV, YV), bs=2*BS))

def make_learner(seed=0, opt_func=partial(SGD, mom=0.9), cls=Learner, lr=0.1, metrics=True, own_generator=False, cbs=()):
    "A learner with dropout (so training draws random numbers) whose initial weights depend on `seed`."
    set_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    dls = make_dls(100 + seed if own_generator else None)
    base = ([TrainCB()] if cls is Learner else []) + ([MetricsCB(accuracy=MulticlassAccuracy())] if metrics else [])
    return cls(model, dls, F.cross_entropy, lr=lr, cbs=[*base, *cbs], opt_func=opt_func)

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]
def same(a, b): return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
def saved_epoch(path): return torch.load(path, weights_only=True)['epoch']
def eval_epochs(learn): return [d['epoch'] for d in learn.metrics.log if d['train'] == 'eval']

class CrashCB(Callback):
    "Raise `exc` before training batch `batch` of epoch `epoch`."
    def __init__(self, epoch, batch, exc=RuntimeError): self.epoch, self.batch, self.exc = epoch, batch, exc
    def before_batch(self, learn):
        if learn.training and (learn.epoch, learn.iter) == (self.epoch, self.batch): raise self.exc('crash')

class WeightsCB(Callback):
    "Keep the weights before each batch (`before`) and after each training epoch (`after[epoch]`)."
    def before_fit(self, learn): self.after = {}
    def before_batch(self, learn): self.before = weights(learn)
    def after_epoch(self, learn):
        if learn.training: self.after[learn.epoch] = weights(learn)

# ---- TerminateOnNaNCB

class BreakCB(Callback):
    "Multiply the predictions of batch `batch` of epoch `epoch` (training or not) by `value`."
    def __init__(self, epoch, batch, training=True, value=float('nan')):
        self.epoch, self.batch, self.training, self.value = epoch, batch, training, value
    def after_predict(self, learn):
        if learn.training == self.training and (learn.epoch, learn.iter) == (self.epoch, self.batch):
            learn.preds = learn.preds * self.value

@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_terminate_on_nan_stops_before_the_step(capsys, value):
    learn, wcb = make_learner(), WeightsCB()
    learn.fit(3, cbs=[TerminateOnNaNCB(), wcb, BreakCB(1, 2, value=value)])
    out = capsys.readouterr().out
    assert 'epoch 1, training batch 2' in out and 'weights are those the last finite losses trained' in out
    assert same(weights(learn), wcb.before)  # the weights the bad batch started from
    assert [(d['epoch'], d['train']) for d in learn.metrics.log] == [(0, 'train'), (0, 'eval')]

def test_terminate_on_nan_in_validation(capsys):
    learn = make_learner()
    learn.fit(3, cbs=[TerminateOnNaNCB(), BreakCB(1, 0, training=False)])
    assert 'epoch 1, validation batch 0' in capsys.readouterr().out
    assert [(d['epoch'], d['train']) for d in learn.metrics.log] == [(0, 'train'), (0, 'eval'), (1, 'train')]

def test_terminate_on_nan_says_when_the_weights_are_broken(capsys):
    class InfWeightCB(Callback):
        def before_batch(self, learn):
            if (learn.epoch, learn.iter) == (0, 3):
                with torch.no_grad(): learn.model[0].weight[0, 0] = float('inf')
    make_learner().fit(2, cbs=[TerminateOnNaNCB(), InfWeightCB()])
    out = capsys.readouterr().out
    assert 'epoch 0, training batch 3' in out and 'not finite (0.weight)' in out and 'checkpoint' in out

def test_after_a_nan_stop_save_model_cb_restores_the_best_weights(tmp_path):
    learn, wcb = make_learner(), WeightsCB()
    learn.fit(4, cbs=[TerminateOnNaNCB(), wcb, BreakCB(2, 1), SaveModelCB(path=tmp_path/'best.pth')])
    best = min(learn.metrics.log[1::2], key=lambda d: d['loss'])['epoch']  # the eval entries of epochs 0 and 1
    assert same(weights(learn), wcb.after[best])

# ---- monitors

def test_monitor_names():
    assert monitor_names(MetricsCB(accuracy=MulticlassAccuracy())) == ['train_accuracy', 'train_loss', 'valid_accuracy', 'valid_loss']
    assert monitor_names(MetricsCB()) == ['train_loss', 'valid_loss']

@pytest.mark.parametrize('cb', [EarlyStoppingCB('valid_acc'), SaveModelCB('accuracy'), TrackerCB('eval_loss')])
def test_unknown_monitor_fails_before_training_and_lists_the_known_ones(cb):
    learn = make_learner()
    w = weights(learn)
    with pytest.raises(ValueError, match=r"unknown monitor .*train_accuracy, train_loss, valid_accuracy, valid_loss"):
        learn.fit(2, cbs=cb)
    assert same(weights(learn), w)

def test_monitor_needs_metrics():
    learn = make_learner(metrics=False)
    with pytest.raises(ValueError, match='no MetricsCB: add MetricsCB()'): learn.fit(1, cbs=EarlyStoppingCB())

@pytest.mark.parametrize('cb', [EarlyStoppingCB, SaveModelCB])
def test_monitor_of_a_phase_that_does_not_run_fails_before_training(cb, tmp_path):
    learn = make_learner()
    w = weights(learn)
    kw = {'path': tmp_path/'m.pth'} if cb is SaveModelCB else {}
    with pytest.raises(ValueError, match="monitors 'valid_loss', but this fit has valid=False.*monitor a train_ metric"):
        learn.fit(3, valid=False, cbs=cb(**kw))
    assert same(weights(learn), w) and not list(tmp_path.iterdir())  # refused before any step or file

def test_monitor_must_be_a_number():
    learn = make_learner(metrics=False, cbs=[MetricsCB(per_class=MulticlassAccuracy(average=None, num_classes=3))])
    with pytest.raises(TypeError, match="valid_per_class is .* not a number"): learn.fit(2, cbs=EarlyStoppingCB('valid_per_class'))

def test_improvement_rules():
    loss, acc = TrackerCB('valid_loss', min_delta=0.1), TrackerCB('valid_accuracy', min_delta=0.1)
    assert loss.better(0.55, 0.7) and not loss.better(0.65, 0.7) and not loss.better(0.8, 0.7)
    assert acc.better(0.85, 0.7) and not acc.better(0.75, 0.7) and not acc.better(0.6, 0.7)
    assert loss.better(5., None) and not loss.better(float('nan'), None) and not loss.better(float('nan'), 1.)
    assert TrackerCB('valid_error').better(0.1, 0.2) and TrackerCB('train_f1', comp=np.less).better(0.1, 0.2)
    with pytest.raises(ValueError, match='min_delta'): TrackerCB(min_delta=-1)

# ---- EarlyStoppingCB

@pytest.mark.parametrize('lr,min_delta', [(0., 0.), (0.1, 10.)])  # nothing changes; nothing changes by more than 10
def test_early_stopping(capsys, lr, min_delta):
    learn = make_learner(lr=lr)
    learn.fit(8, cbs=EarlyStoppingCB(min_delta=min_delta, patience=2))
    assert eval_epochs(learn) == [0, 1, 2]
    assert 'valid_loss has not improved for 2 epochs' in capsys.readouterr().out

def test_early_stopping_without_validation():
    learn = make_learner(lr=0.)
    learn.fit(8, valid=False, cbs=EarlyStoppingCB('train_loss', patience=1))
    assert [d['epoch'] for d in learn.metrics.log] == [0, 1] and learn.epoch == 1

@pytest.mark.parametrize('patience', [0, 1.5, True])
def test_early_stopping_bad_patience(patience):
    with pytest.raises(ValueError, match='patience must be an integer >= 1'): EarlyStoppingCB(patience=patience)

# ---- SaveModelCB

def test_save_model_keeps_the_best_weights(tmp_path, capsys):
    learn, wcb = make_learner(), WeightsCB()
    path = tmp_path/'best.pth'
    # "best" = the highest training loss, which comes first: so the best epoch is not the last
    learn.fit(4, cbs=[wcb, SaveModelCB('train_loss', comp=operator.gt, path=path)])
    losses = [d['loss'] for d in learn.metrics.log if d['train'] == 'train']
    best = losses.index(max(losses))
    assert best < 3 and saved_epoch(path) == best
    assert same(weights(learn), wcb.after[best])
    assert f'loaded the weights of epoch {best}' in capsys.readouterr().out

def test_save_model_leaves_the_weights_after_an_error(tmp_path):
    learn = make_learner()
    with pytest.raises(RuntimeError, match='crash'):
        learn.fit(4, cbs=[SaveModelCB(comp=operator.gt, path=tmp_path/'best.pth'), wcb := WeightsCB(), CrashCB(2, 3)])
    assert same(weights(learn), wcb.before) and not same(weights(learn), wcb.after[saved_epoch(tmp_path/'best.pth')])

def test_save_model_loads_the_best_weights_in_an_except_block(tmp_path):
    learn = make_learner()
    try: raise KeyError('handled by the caller')
    except KeyError: learn.fit(3, cbs=[SaveModelCB(comp=operator.gt, path=tmp_path/'best.pth'), wcb := WeightsCB()])
    assert same(weights(learn), wcb.after[saved_epoch(tmp_path/'best.pth')])

def test_save_every_epoch_needs_no_metrics(tmp_path):
    learn = make_learner(metrics=False)
    learn.fit(2, cbs=SaveModelCB('no such monitor', path=tmp_path/'run.pth', every_epoch=True))
    assert saved_epoch(tmp_path/'run.pth') == 1 and torch.load(tmp_path/'run.pth', weights_only=True)['log'] is None

def test_the_best_file_must_hold_the_best_epoch(tmp_path):
    path = tmp_path/'best.pth'
    class OverwriteCB(Callback):
        order = SaveModelCB.order + 1
        def after_epoch(self, learn):
            if not learn.training and learn.epoch == 2: learn.save(path)  # not the best epoch
    with pytest.raises(RuntimeError, match='holds epoch 2, but the best valid_loss was at epoch 0'):
        make_learner().fit(3, cbs=[SaveModelCB(comp=operator.gt, path=path), OverwriteCB()])

# ---- save and load

def test_save_load_round_trip(tmp_path):
    learn = make_learner()
    learn.fit(2)
    path = learn.save(tmp_path/'sub'/'ckpt.pth')
    w, log, opt_state = weights(learn), learn.metrics.log, {k: v.clone() for k, v in learn.opt.state[learn.model[0].weight].items()}
    nxt = random.random(), np.random.rand(), torch.rand(2)
    learn.fit(1)
    random.random(); np.random.rand(); torch.rand(3)
    ckpt = learn.load(path)
    assert same(weights(learn), w) and learn.epoch == 1 and ckpt['epoch'] == 1 and ckpt['n_epochs'] == 2
    assert (random.random(), np.random.rand()) == nxt[:2] and torch.equal(torch.rand(2), nxt[2])
    assert same(list(learn.opt.state[learn.model[0].weight].values()), list(opt_state.values()))
    assert ckpt['log'] == log

def test_load_model_only(tmp_path):
    learn = make_learner()
    learn.fit(1)
    path, w = learn.save(tmp_path/'c.pth'), weights(learn)
    learn.fit(2)
    state = torch.get_rng_state()
    learn.load(path, model_only=True)
    assert same(weights(learn), w) and learn.epoch == 1 and torch.equal(torch.get_rng_state(), state)

def test_load_checks_the_model_first(tmp_path):
    path = make_learner().save(tmp_path/'c.pth')
    set_seed(0)
    other = Learner(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), make_dls(), F.cross_entropy)
    w = weights(other)
    with pytest.raises(ValueError) as e: other.load(path)
    msg = str(e.value)
    assert 'does not fit this model' in msg and '0.weight: shape [16, 6] in the checkpoint, [8, 6] in the model' in msg
    assert 'missing from the checkpoint: 2.weight, 2.bias' in msg and 'not in the model: 3.weight, 3.bias' in msg
    assert same(weights(other), w)

def test_load_checks_the_optimizer(tmp_path):
    adam = make_learner(opt_func=Adam)
    adam.fit(1)
    path = adam.save(tmp_path/'c.pth')
    learn = make_learner()
    learn.fit(1)
    w = weights(learn)
    with pytest.raises(ValueError, match=r"hypers \['eps', 'lr', 'mom', 'sqr_mom', 'wd'\] in group 0, this one \['lr', 'mom', 'wd'\].*model_only=True"):
        learn.load(path)
    assert same(weights(learn), w)
    learn.load(path, model_only=True)
    assert same(weights(learn), weights(adam))

def test_load_with_other_data_loaders(tmp_path):
    path = make_learner(own_generator=True).save(tmp_path/'c.pth')  # before any fit: no optimizer, epoch -1
    learn = make_learner(seed=1)
    assert learn.load(path)['epoch'] == -1 and learn.epoch == -1  # the training data does not matter to load
    assert same(weights(learn), weights(make_learner()))

def test_resume_from_a_checkpoint_saved_before_training(tmp_path):
    path = make_learner().save(tmp_path/'c.pth')
    ref = make_learner()
    ref.fit(2)
    learn = make_learner(seed=1)
    learn.fit(2, cbs=ResumeCB(path))
    assert same(weights(learn), weights(ref)) and learn.metrics.log == ref.metrics.log

def test_load_errors(tmp_path):
    learn = make_learner()
    with pytest.raises(FileNotFoundError, match='no checkpoint at'): learn.load(tmp_path/'nope.pth')
    torch.save(learn.model.state_dict(), tmp_path/'sd.pth')
    with pytest.raises(ValueError, match=r"not a minitrain checkpoint.*state_dict"): learn.load(tmp_path/'sd.pth')
    torch.save({'format': 'minitrain checkpoint 1', 'x': np.float64(1.)}, tmp_path/'pickle.pth')
    with pytest.raises(ValueError, match='only a pickle you trust'): learn.load(tmp_path/'pickle.pth')
    data = learn.save(tmp_path/'good.pth').read_bytes()
    (tmp_path/'half.pth').write_bytes(data[:len(data)//2])
    with pytest.raises(ValueError, match='truncated'): learn.load(tmp_path/'half.pth')

def test_checkpoints_load_without_pickle(tmp_path):
    learn = make_learner(opt_func=Adam, own_generator=True, cbs=[BatchSchedCB(partial(OneCycleLR, max_lr=0.1, total_steps=N_ITER, cycle_momentum=False))])
    learn.fit(1)
    ckpt = torch.load(learn.save(tmp_path/'c.pth'), weights_only=True)
    assert {'model', 'opt', 'rng', 'cbs', 'log'} <= ckpt.keys() and 'BatchSchedCB' in ckpt['cbs']
    assert set(ckpt['rng']) == {'python', 'numpy', 'torch', 'cuda', 'samplers'} and 'train' in ckpt['rng']['samplers']

def test_a_state_that_needs_pickle_fails_before_training(tmp_path):
    class LambdaStateCB(Callback):
        def state_dict(self): return {'f': lambda: 0}
        def load_state_dict(self, sd): pass
    learn = make_learner(cbs=[LambdaStateCB()])
    w = weights(learn)
    with pytest.raises(TypeError, match=r"cannot save checkpoint\['cbs'\]\['LambdaStateCB'\]\['f'\]: it is a function"):
        learn.fit(2, cbs=SaveModelCB(path=tmp_path/'c.pth', every_epoch=True))
    assert same(weights(learn), w)
    with pytest.raises(TypeError, match='weights_only=True'): learn.save(tmp_path/'d.pth')
    assert not list(tmp_path.iterdir())

def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    learn = make_learner()
    learn.fit(1)
    path = learn.save(tmp_path/'c.pth')
    real_save = torch.save
    def torn_save(obj, f):
        real_save({'format': 'half'}, f)
        raise OSError('disk full')
    learn.fit(2)
    monkeypatch.setattr(torch, 'save', torn_save)
    with pytest.raises(OSError, match='disk full'): learn.save(path)
    monkeypatch.undo()
    assert saved_epoch(path) == 0 and [p.name for p in tmp_path.iterdir()] == ['c.pth']

# ---- resume

def fit_plain(learn, cbs): learn.fit(N_EPOCHS, cbs=cbs)
def fit_one_cycle(learn, cbs): learn.fit_one_cycle(N_EPOCHS, lr_max=0.05, cbs=cbs)
def fit_batch_sched(learn, cbs): learn.fit(N_EPOCHS, cbs=[BatchSchedCB(partial(OneCycleLR, max_lr=0.1, total_steps=N_EPOCHS*N_ITER)), *cbs])
def fit_epoch_sched(learn, cbs): learn.fit(N_EPOCHS, cbs=[EpochSchedCB(partial(StepLR, step_size=1, gamma=0.5)), *cbs])
def fit_no_valid(learn, cbs): learn.fit(N_EPOCHS, valid=False, cbs=cbs)

RUNS = {  # name: (make_learner's arguments, how to fit)
    'sgd-momentum': ({}, fit_plain),
    'adam-one-cycle': (dict(opt_func=Adam), fit_one_cycle),
    'torch-sgd-torch-one-cycle': (dict(opt_func=partial(torch.optim.SGD, momentum=0.9)), fit_batch_sched),
    'torch-adam-step-lr': (dict(opt_func=torch.optim.Adam), fit_epoch_sched),
    'momentum-learner': (dict(cls=MomentumLearner, opt_func=SGD), fit_plain),
    'no-validation': ({}, fit_no_valid),
    'sampler-with-own-generator': (dict(own_generator=True), fit_one_cycle),
}

@pytest.mark.parametrize('exc', [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize('run', RUNS)
def test_resume_is_exact(tmp_path, run, exc):
    kwargs, fit = RUNS[run]
    ref, ref_rec = make_learner(**kwargs), RecorderCB(lr=rec_lr)
    fit(ref, [ref_rec])
    path = tmp_path/'run.pth'
    with pytest.raises(exc, match='crash'): fit(make_learner(**kwargs), [SaveModelCB(path=path, every_epoch=True), CrashCB(2, 3, exc)])
    assert saved_epoch(path) == 1
    learn, rec = make_learner(**{**kwargs, 'seed': 1}), RecorderCB(lr=rec_lr)  # another seed: what matches comes from the file
    fit(learn, [SaveModelCB(path=path, every_epoch=True), ResumeCB(path), rec])
    assert same(weights(learn), weights(ref))
    assert learn.metrics.log == ref.metrics.log
    assert rec.recs['lr'] == ref_rec.recs['lr'][2*N_ITER:]  # the schedule goes on where it was; RecorderCB sees the loaded hypers
    assert saved_epoch(path) == N_EPOCHS - 1

def test_resume_in_the_same_learner(tmp_path):
    ref = make_learner()
    fit_one_cycle(ref, [])
    learn, path = make_learner(), tmp_path/'run.pth'
    with pytest.raises(KeyboardInterrupt): fit_one_cycle(learn, [SaveModelCB(path=path, every_epoch=True), CrashCB(3, 0, KeyboardInterrupt)])
    fit_one_cycle(learn, [ResumeCB(path)])
    assert same(weights(learn), weights(ref)) and learn.metrics.log == ref.metrics.log

def test_resume_continues_early_stopping(tmp_path):
    ref = make_learner(lr=0.)
    ref.fit(8, cbs=EarlyStoppingCB(patience=3))
    assert eval_epochs(ref) == [0, 1, 2, 3]
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError):
        make_learner(lr=0.).fit(8, cbs=[EarlyStoppingCB(patience=3), SaveModelCB(path=path, every_epoch=True), CrashCB(3, 0)])
    learn = make_learner(lr=0.)
    learn.fit(8, cbs=[EarlyStoppingCB(patience=3), ResumeCB(path)])
    assert learn.metrics.log == ref.metrics.log

class CountCB(Callback):
    "Counts training batches, across interruptions (its count is in checkpoints: `state_dict`)."
    def __init__(self): self.n = 0
    def after_batch(self, learn): self.n += learn.training
    def state_dict(self): return {'n': self.n}
    def load_state_dict(self, sd): self.n = sd['n']

def test_resume_restores_callback_state(tmp_path):
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError): make_learner().fit(3, cbs=[CountCB(), SaveModelCB(path=path, every_epoch=True), CrashCB(2, 1)])
    learn = make_learner()
    learn.fit(3, cbs=[cb := CountCB(), ResumeCB(path)])
    assert cb.n == 3*N_ITER

def test_resume_without_metrics(tmp_path):
    ref = make_learner(metrics=False)
    ref.fit(3)
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError): make_learner(metrics=False).fit(3, cbs=[SaveModelCB(path=path, every_epoch=True), CrashCB(2, 0)])
    learn = make_learner(seed=1, metrics=False)
    learn.fit(3, cbs=ResumeCB(path))
    assert same(weights(learn), weights(ref))

def test_resume_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint at'): make_learner().fit(2, cbs=ResumeCB(tmp_path/'run.pth'))
    ref = make_learner()
    ref.fit(2)
    learn = make_learner()
    learn.fit(2, cbs=ResumeCB(tmp_path/'run.pth', missing_ok=True))  # starts from scratch
    assert same(weights(learn), weights(ref))

def test_resume_a_finished_run(tmp_path, capsys):
    learn = make_learner()
    learn.fit(2, cbs=SaveModelCB(path=tmp_path/'run.pth', every_epoch=True))
    w = weights(learn)
    learn = make_learner(seed=1)
    learn.fit(2, cbs=ResumeCB(tmp_path/'run.pth'))
    assert same(weights(learn), w) and 'nothing left to train' in capsys.readouterr().out

@pytest.mark.parametrize('resume,msg', [
    (lambda l, p: l.fit(5, cbs=ResumeCB(p)), 'comes from a fit of 4 epochs, this one has 5'),
    (lambda l, p: l.fit(4, start_epoch=1, cbs=ResumeCB(p)), 'asked to start at epoch 1, but .* continues at epoch 2'),
    (lambda l, p: l.fit(4, cbs=[ResumeCB(p), EpochSchedCB(partial(StepLR, step_size=1))]), r"callbacks none, this fit has \['EpochSchedCB'\]"),
    (lambda l, p: (l.cbs.pop(1), l.fit(4, cbs=ResumeCB(p))), 'had a MetricsCB and this fit has none'),
])
def test_resume_refuses_another_run(tmp_path, resume, msg):
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError): make_learner().fit(4, cbs=[SaveModelCB(path=path, every_epoch=True), CrashCB(2, 0)])
    learn = make_learner()
    w = weights(learn)
    with pytest.raises(ValueError, match=msg): resume(learn, path)
    assert same(weights(learn), w)

def test_resume_refuses_other_samplers(tmp_path):
    path = tmp_path/'run.pth'
    with pytest.raises(RuntimeError): make_learner(own_generator=True).fit(3, cbs=[SaveModelCB(path=path, every_epoch=True), CrashCB(2, 0)])
    with pytest.raises(ValueError, match=r"samplers of \['train'\] have their own generator, here those of no DataLoader"):
        make_learner().fit(3, cbs=ResumeCB(path))

def test_lr_find_leaves_checkpoints_alone(tmp_path):
    path = tmp_path/'run.pth'
    learn = make_learner(cbs=[SaveModelCB(path=path, every_epoch=True), ResumeCB(path, missing_ok=True), TerminateOnNaNCB()])
    learn.fit(1)
    data = path.read_bytes()
    learn.lr_find(plot=False, max_epochs=2)
    assert path.read_bytes() == data

# ---- a killed process resumes

SCRIPT = '''
import io, os, signal, sys
import torch
from torch import nn
import torch.nn.functional as F
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import Adam
from minitrain.learner import Learner, TrainCB, MetricsCB, Callback
from minitrain.schedule import fit_one_cycle
from minitrain.tracking import SaveModelCB, ResumeCB

ckpt, out = sys.argv[1:3]
kill_at = os.environ.get('KILL_AT')              # 'epoch,batch': SIGKILL ourselves before that training batch
kill_in_save = os.environ.get('KILL_IN_SAVE')   # epoch: SIGKILL ourselves halfway through writing its checkpoint

class KillCB(Callback):
    def __init__(self, epoch, batch): self.at = epoch, batch
    def before_batch(self, learn):
        if learn.training and (learn.epoch, learn.iter) == self.at: os.kill(os.getpid(), signal.SIGKILL)

if kill_in_save is not None:
    real_save = torch.save
    def torn_save(obj, f):
        if obj['epoch'] == int(kill_in_save):
            buf = io.BytesIO()
            real_save(obj, buf)
            f.write(buf.getvalue()[:len(buf.getvalue())//2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, f)
    torch.save = torn_save

set_seed(0)
g = torch.Generator().manual_seed(0)
x = torch.randn(320, 8, generator=g)
y = (x @ torch.randn(8, 4, generator=g)).argmax(1)
dls = DataLoaders.from_dsets(Dataset(x[:256], y[:256]), Dataset(x[256:], y[256:]), bs=16)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4))
learn = Learner(model, dls, F.cross_entropy, cbs=[TrainCB(), MetricsCB(accuracy=MulticlassAccuracy())], opt_func=Adam)
cbs = [SaveModelCB(path=ckpt, every_epoch=True), ResumeCB(ckpt, missing_ok=True)]
if kill_at: cbs.append(KillCB(*map(int, kill_at.split(','))))
learn.fit_one_cycle(4, lr_max=0.02, cbs=cbs)
torch.save({'model': learn.model.state_dict(), 'log': learn.metrics.log}, out)
'''

def run_script(tmp_path, ckpt, out, **env):
    "Run the training script in a new process; returns its exit code."
    script = tmp_path/'train.py'
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(tmp_path/ckpt), str(tmp_path/out)], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=300)
    assert r.returncode in (0, -signal.SIGKILL), r.stderr
    return r.returncode

def test_a_killed_process_resumes_exactly(tmp_path):
    assert run_script(tmp_path, 'ref.pth', 'ref_out.pth') == 0  # uninterrupted
    assert run_script(tmp_path, 'run.pth', 'out.pth', KILL_AT='2,5') == -signal.SIGKILL  # killed in the middle of epoch 2
    assert saved_epoch(tmp_path/'run.pth') == 1
    # resumed, then killed while writing the checkpoint of epoch 2: the one of epoch 1 survives, whole
    assert run_script(tmp_path, 'run.pth', 'out.pth', KILL_IN_SAVE='2') == -signal.SIGKILL
    assert saved_epoch(tmp_path/'run.pth') == 1 and list(tmp_path.glob('.run.pth.*.tmp'))
    assert run_script(tmp_path, 'run.pth', 'out.pth') == 0  # resumed again, to the end
    ref, out = torch.load(tmp_path/'ref_out.pth', weights_only=True), torch.load(tmp_path/'out.pth', weights_only=True)
    assert ref['model'].keys() == out['model'].keys() and all(torch.equal(ref['model'][k], out['model'][k]) for k in ref['model'])
    assert out['log'] == ref['log'] and [d['epoch'] for d in out['log']] == [0, 0, 1, 1, 2, 2, 3, 3]

def test_only_the_main_process_writes(tmp_path):
    from torch import nn
    from minitrain.learner import Learner
    learn = Learner(nn.Linear(2, 1))
    learn.is_main = False  # what DistributedCB sets on ranks other than 0
    assert learn.save(tmp_path/'ckpt.pth') == tmp_path/'ckpt.pth'
    assert not (tmp_path/'ckpt.pth').exists()

def test_checkpoints_hold_the_bare_model_under_ddp(tmp_path):
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP
    from minitrain.learner import Learner
    from minitrain.tracking import bare_model
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        model = nn.Linear(2, 1)
        learn = Learner(DDP(model))
        assert bare_model(learn) is model
        learn.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        learn.save(tmp_path/'ckpt.pth')
        plain = Learner(nn.Linear(2, 1))
        plain.load(tmp_path/'ckpt.pth', model_only=True)
        assert torch.equal(plain.model.weight, model.weight)
    finally: dist.destroy_process_group()

def test_checkpoints_hold_the_bare_model_under_data_parallel(tmp_path):
    from torch import nn
    from minitrain.learner import Learner
    from minitrain.tracking import bare_model
    model = nn.Linear(2, 1)
    learn = Learner(nn.DataParallel(model))
    assert bare_model(learn) is model
    learn.opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learn.save(tmp_path/'ckpt.pth')
    assert set(torch.load(tmp_path/'ckpt.pth', weights_only=True)['model']) == {'weight', 'bias'}  # no 'module.' prefix
