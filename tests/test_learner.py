"The Learner stage: phases and Cancel exceptions, fit's callbacks, training-step providers, the core callbacks."
import random, re
from functools import partial
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader, TensorDataset
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.data import DataLoader, DataLoaders, Dataset
from minitrain.learner import *
from minitrain.optimizer import SGD, Adam, RMSProp, Optimizer, sgd_step

# ---- tiny data and models ------------------------------------------------------------------------------

class DLs:
    "`dls` for tests: anything with `.train` and `.valid`."
    def __init__(self, train, valid): self.train, self.valid = train, valid

def batches(n_batches, bs=4, n_in=3, n_out=2, seed=0, n_inp=1):
    "A list of `n_batches` batches `(x1, ..., x_n_inp, y)` for a classifier with `n_in` features and `n_out` classes."
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randn(bs, n_in, generator=g) for _ in range(n_inp)) + (torch.randint(0, n_out, (bs,), generator=g),)
            for _ in range(n_batches)]

def tiny_dls(n_train=2, n_valid=2, **kw): return DLs(batches(n_train, **kw), batches(n_valid, seed=1, **kw))

def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 2)

def ce_learner(cls=Learner, model=None, dls=None, **kw):
    "A classifier learner on tiny data."
    return cls(model or linear(), dls or tiny_dls(), F.cross_entropy, **kw)

# ---- recording every event ------------------------------------------------------------------------------

class Rec(Callback):
    "Record every event, and raise `exc` the first time `raise_at` happens."
    def __init__(self, raise_at=None, exc=None): self.raise_at, self.exc, self.log = raise_at, exc, []
    def hit(self, name):
        self.log.append(name)
        if name == self.raise_at:
            self.raise_at = None
            raise self.exc()

for _e in EVENTS: setattr(Rec, _e, lambda self, learn, _e=_e: self.hit(_e))

class RecLearner(TrainLearner):
    "TrainLearner that also records its training-step methods in its `Rec`."
    def __init__(self, rec, **kw):
        super().__init__(linear(), tiny_dls(), F.cross_entropy, cbs=[rec], **kw)
        self.rec = rec
for _m in STEP_METHODS:
    setattr(RecLearner, _m, lambda self, _m=_m: (self.rec.hit(_m), getattr(TrainLearner, _m)(self))[1])

# ---- the oracle: the phase rules of notebook 04 (fit ⊃ epoch ⊃ batch), written out plainly ----------------------------------------

CANCEL = {'fit': CancelFitException, 'epoch': CancelEpochException, 'batch': CancelBatchException,
          'backward': CancelBackwardException, 'step': CancelStepException}

def expected_events(raise_at, exc, n_epochs=2, n_train=2, n_valid=2, valid=True):
    """The events of a fit when `exc` is raised the first time `raise_at` happens, and whether an exception escapes.
    Entering phase p runs before_p; normal exit runs after_p; Cancel<P>Exception is swallowed by p only (also when
    cleanup_p raises it); cleanup_p always runs. Training batches: predict, after_predict, get_loss, after_loss,
    backward phase, step phase, and zero_grad when the step phase was not cancelled, or when CancelBatchException
    ended the batch after the step ran (its gradients are forgotten, issue 28)."""
    log, armed = [], [True]
    def ev(name):
        log.append(name)
        if name == raise_at and armed[0]:
            armed[0] = False
            raise exc()
    def phase(p, body):
        completed = False
        try:
            ev(f'before_{p}'); body(); ev(f'after_{p}')
            completed = True
        except CANCEL[p]: pass
        finally:
            try: ev(f'cleanup_{p}')
            except CANCEL[p]: pass
        return completed
    def batch(training):
        ev('predict'); ev('after_predict'); ev('get_loss'); ev('after_loss')
        if training:
            stepped = []
            try:
                phase('backward', lambda: ev('backward'))
                completed = phase('step', lambda: (ev('step'), stepped.append(True)))
            except CancelBatchException:
                if stepped: ev('zero_grad')
                raise
            if completed: ev('zero_grad')
    def epoch(training):
        for _ in range(n_train if training else n_valid): phase('batch', lambda: batch(training))
    def fit():
        for _ in range(n_epochs):
            phase('epoch', lambda: epoch(True))
            if valid: phase('epoch', lambda: epoch(False))
    try: phase('fit', fit)
    except CancelException: return log, True
    return log, False

ALL_EVENTS = EVENTS + STEP_METHODS
CANCELS = list(CANCEL.values())

@pytest.mark.parametrize('exc', CANCELS, ids=lambda e: e.__name__)
@pytest.mark.parametrize('event', ALL_EVENTS)
def test_cancel_at_every_event(event, exc):
    want, escapes = expected_events(event, exc)
    assert event in want  # the exception is really raised
    rec = Rec(event, exc)
    learn = RecLearner(rec)
    if escapes:
        with pytest.raises(RuntimeError, match=f'{exc.__name__} was raised outside the') as e:
            learn.fit(2)
        assert isinstance(e.value.__cause__, exc)
    else: learn.fit(2)
    assert rec.log == want

ONE_BATCH = ['before_fit', 'before_epoch', 'before_batch', 'predict', 'after_predict', 'get_loss', 'after_loss',
             'before_backward', 'backward', 'after_backward', 'cleanup_backward',
             'before_step', 'step', 'after_step', 'cleanup_step', 'zero_grad', 'after_batch', 'cleanup_batch',
             'after_epoch', 'cleanup_epoch', 'after_fit', 'cleanup_fit']

@pytest.mark.parametrize('event,exc,want', [
    (None, None, ONE_BATCH),
    ('before_batch', CancelBatchException,
     ['before_fit', 'before_epoch', 'before_batch', 'cleanup_batch', 'after_epoch', 'cleanup_epoch', 'after_fit', 'cleanup_fit']),
    ('before_step', CancelStepException, [e for e in ONE_BATCH if e not in ('step', 'after_step', 'zero_grad')]),
    ('before_backward', CancelBackwardException, [e for e in ONE_BATCH if e not in ('backward', 'after_backward')]),
    ('after_loss', CancelEpochException, ONE_BATCH[:7] + ['cleanup_batch', 'cleanup_epoch', 'after_fit', 'cleanup_fit']),
    ('cleanup_batch', CancelFitException, ONE_BATCH[:18] + ['cleanup_epoch', 'cleanup_fit']),
    ('cleanup_step', CancelStepException, ONE_BATCH),
])
def test_cancel_sequences_written_out(event, exc, want):
    "A few sequences by hand, so the oracle above is checked too."
    rec = Rec(event, exc)
    learn = RecLearner(rec)
    learn.dls = tiny_dls(n_train=1)
    learn.fit(1, valid=False)
    assert rec.log == want
    assert expected_events(event, exc, n_epochs=1, n_train=1, valid=False) == (want, False)

def test_cancel_batch_in_training_skips_only_that_batch():
    rec = Rec('after_predict', CancelBatchException)
    RecLearner(rec).fit(1)
    assert rec.log.count('before_batch') == 4 and rec.log.count('after_batch') == 3
    assert rec.log.count('step') == 1  # the cancelled training batch did not step

# ---- fit's callbacks are removed; KeyboardInterrupt ---------------------------------------------------------

class Boom(Callback):
    def __init__(self, event, exc): self.event, self.exc = event, exc
    def __getattr__(self, nm):
        if nm != self.event: raise AttributeError(nm)
        def f(learn): raise self.exc
        return f

@pytest.mark.parametrize('exc', [ValueError('boom'), KeyboardInterrupt(), CancelFitException()], ids=repr)
def test_fit_cbs_removed_after_exceptions(exc):
    keep = Rec()
    learn = ce_learner(cbs=[TrainCB(), keep])
    extra, boom = Rec(), Boom('after_loss', exc)
    if isinstance(exc, CancelFitException): learn.fit(1, cbs=[extra, boom])
    else:
        with pytest.raises(type(exc)): learn.fit(1, cbs=[extra, boom])
    assert len(learn.cbs) == 2 and isinstance(learn.cbs[0], TrainCB) and learn.cbs[1] is keep
    assert extra.log[-1] == 'cleanup_fit'
    learn.fit(1)  # and the cached events no longer call them
    assert extra.log.count('before_fit') == 1 and keep.log.count('before_fit') == 2

def test_fit_cbs_removed_when_fit_cannot_start():
    learn = Learner(linear(), tiny_dls(), F.cross_entropy)
    with pytest.raises(AttributeError): learn.fit(1, cbs=[Rec()])
    assert len(learn.cbs) == 0

@pytest.mark.parametrize('training', [True, False])
def test_keyboard_interrupt_runs_every_cleanup_and_leaves_learner_usable(training):
    rec = Rec()
    learn = ce_learner(cbs=[TrainCB()])
    params = [p.detach().clone() for p in learn.model.parameters()]
    stop = Boom('after_backward' if training else 'after_loss', KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt): learn.fit(1, cbs=[rec, stop], train=training, valid=not training)
    want = ['cleanup_backward'] if training else []
    assert [e for e in rec.log if e.startswith('cleanup')] == want + ['cleanup_batch', 'cleanup_epoch', 'cleanup_fit']
    assert torch.is_grad_enabled() and len(learn.cbs) == 1
    # the learner still trains: parameters move and stay finite, the optimizer steps
    learn.fit(1, valid=False)
    learn.opt.step(); learn.opt.zero_grad()
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(params, learn.model.parameters()))

def test_fit_starts_from_zero_gradients():
    "Gradients left by an interrupted batch do not leak into the next fit's first step."
    a, b = ce_learner(cbs=[TrainCB()]), ce_learner(cbs=[TrainCB()])
    for p in a.model.parameters(): p.grad = torch.full_like(p, 100.)
    a.fit(1); b.fit(1)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))

# ---- the training step: missing, from a subclass, from a callback ---------------------------------------------

def test_missing_training_step_error_names_method_and_fixes():
    rec = Rec()
    learn = Learner(linear(), tiny_dls(), F.cross_entropy, cbs=[rec])
    with pytest.raises(AttributeError) as e: learn.fit(1)
    msg = str(e.value)
    assert '`predict`' in msg and 'TrainCB()' in msg and 'subclass Learner' in msg
    assert rec.log == []  # raised before any work
    assert not hasattr(learn, 'predict')

def test_missing_step_named_when_only_prediction_provided():
    class Predict(Callback):
        def predict(self, learn): learn.preds = learn.model(learn.batch[0])
        def get_loss(self, learn): learn.loss = learn.loss_func(learn.preds, learn.batch[1])
    learn = Learner(linear(), tiny_dls(), F.cross_entropy, cbs=[Predict(), metrics := MetricsCB()])
    with pytest.raises(AttributeError, match='`backward`'): learn.fit(1)
    learn.fit(1, train=False)  # validation needs only predict and get_loss
    assert [d['train'] for d in metrics.log] == ['eval']

def test_two_providers_is_an_error():
    with pytest.raises(ValueError, match='TrainCB, TrainCB all provide `predict`'):
        ce_learner(cbs=[TrainCB(), TrainCB()]).fit(1)

def test_subclass_method_wins_over_callback():
    class Half(TrainCB):
        def step(self, learn): raise AssertionError('not used')
    with pytest.warns(UserWarning, match='Half.step is never called: TrainLearner defines `step` itself'):
        learn = ce_learner(TrainLearner, cbs=[Half()])
    learn.fit(1)

def test_provided_methods_follow_the_callbacks():
    "The training-step methods kept as attributes are dropped when the callbacks change."
    class Other(TrainCB):
        def predict(self, learn): learn.preds = learn.model(*learn.xb) * 0
    first, other = TrainCB(), Other()
    learn = ce_learner(cbs=[first])
    learn.fit(1, cbs=[SingleBatchCB()])
    assert learn.preds.abs().sum() > 0
    f = learn.predict
    assert vars(learn)['predict'] is f is learn.predict  # kept: the next lookup is a plain one
    learn.remove_cb(first); learn.add_cb(other)
    learn.fit(1, cbs=[SingleBatchCB()])
    assert learn.preds.abs().sum() == 0  # Other's predict, not the one kept for TrainCB
    learn.cbs.remove(other)
    assert 'predict' not in vars(learn)
    with pytest.raises(AttributeError, match='no callback provides one'): learn.predict
    learn.predict = own = lambda: None  # set by hand: kept when the callbacks change
    learn.add_cb(TrainCB())
    assert learn.predict is own

def run_losses(learn, n_epochs=2):
    class Losses(Callback):
        def before_fit(self, learn): self.losses = []
        def after_loss(self, learn): self.losses.append(learn.loss.item())
    cb = Losses()
    learn.fit(n_epochs, cbs=cb)
    return cb.losses

def test_train_learner_and_train_cb_agree_bit_for_bit():
    a = run_losses(ce_learner(TrainLearner, lr=0.5))
    b = run_losses(ce_learner(cbs=[TrainCB()], lr=0.5))
    assert a == b and a[0] != a[-1]

@pytest.mark.parametrize('opt_func', [SGD, torch.optim.SGD], ids=['ours', 'torch'])
def test_learner_matches_hand_written_loop(opt_func):
    dls = tiny_dls(n_train=5)
    learn = ce_learner(dls=dls, cbs=[TrainCB()], lr=0.3, opt_func=opt_func)
    learn.fit(2)
    model = linear()
    opt = opt_func(model.parameters(), lr=0.3)
    for _ in range(2):
        for x, y in dls.train:
            F.cross_entropy(model(x), y).backward(); opt.step(); opt.zero_grad()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), learn.model.parameters()))

def test_momentum_learner_keeps_scaled_gradients():
    learn = ce_learner(MomentumLearner, mom=0.5)
    learn.fit(1, valid=False)
    before = [p.grad.clone() for p in learn.model.parameters()]
    learn.zero_grad()
    assert all(torch.equal(p.grad, g*0.5) and g.abs().sum() > 0 for p, g in zip(learn.model.parameters(), before))

def test_n_inp_two_inputs():
    class Two(nn.Module):
        def __init__(self): super().__init__(); self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)
        def forward(self, x1, x2): return self.a(x1) - self.b(x2)
    torch.manual_seed(0)
    dls = tiny_dls(n_inp=2)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    learn = Learner(Two(), dls, F.cross_entropy, lr=0.1, cbs=[TrainCB(n_inp=2), metrics])
    learn.fit(1)
    assert learn.n_inp == 2
    with torch.no_grad():
        preds = torch.cat([learn.model(a, b) for a, b, _ in dls.valid]); y = torch.cat([y for *_, y in dls.valid])
    assert metrics.log[-1]['accuracy'] == pytest.approx((preds.argmax(1) == y).float().mean().item())
    assert metrics.log[-1]['loss'] == pytest.approx(F.cross_entropy(preds, y).item(), rel=1e-6)

def test_default_optimizer_is_ours():
    learn = ce_learner(cbs=[TrainCB()])
    learn.fit(1)
    assert isinstance(learn.opt, Optimizer) and learn.opt.param_groups[0]['lr'] == 0.1

def test_cancel_step_accumulates_gradients():
    "Raising CancelStepException in before_step every other batch = one step on both batches' summed gradients."
    class Accum(Callback):
        def before_fit(self, learn): self.count = 0
        def before_step(self, learn):
            self.count += 1
            if self.count % 2: raise CancelStepException()
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(3)), torch.tensor([0, 1]*4)
    a = ce_learner(dls=DLs([(x[:4], y[:4]), (x[4:], y[4:])], []), cbs=[TrainCB(), Accum()], lr=0.1, opt_func=torch.optim.SGD)
    a.fit(1, valid=False)
    b = ce_learner(dls=DLs([(x, y)], []), cbs=[TrainCB()], lr=0.2, opt_func=torch.optim.SGD)
    b.fit(1, valid=False)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.model.parameters(), b.model.parameters()))

# ---- optimizers and data loaders ----------------------------------------------------------------------------

def ds_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())

OPT_FUNCS = {'SGD': SGD, 'SGD mom': partial(SGD, mom=0.9), 'Adam': Adam, 'RMSProp': RMSProp,
             'Optimizer(cbs=[sgd_step])': partial(Optimizer, cbs=[sgd_step]), 'torch SGD': torch.optim.SGD,
             'torch SGD momentum': partial(torch.optim.SGD, momentum=0.9), 'torch Adam': torch.optim.Adam}

@pytest.mark.parametrize('opt_func', OPT_FUNCS.values(), ids=OPT_FUNCS.keys())
def test_optimizers_train(opt_func):
    dls = DataLoaders.from_dsets(ds_data(), ds_data(seed=1), bs=8)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    learn = Learner(linear(), dls, F.cross_entropy, lr=0.05, cbs=[TrainCB(), metrics], opt_func=opt_func)
    learn.fit(4)
    assert metrics.log[-1]['loss'] < metrics.log[1]['loss']
    assert metrics.log[-1]['accuracy'] > 0.8

def test_our_dataloader_torch_dataloader_and_lists_agree():
    "The learner only iterates `dls.train`/`dls.valid`: ours, torch's and a list of the same batches give the same run."
    ds = ds_data()
    x, y = ds.tensors
    ours = Dataset(x, y)
    runs = [run_losses(ce_learner(dls=dls, cbs=[TrainCB()])) for dls in (
        DataLoaders(DataLoader(ours, bs=8), DataLoader(ours, bs=8)),
        DLs(TorchDataLoader(ds, batch_size=8), TorchDataLoader(ds, batch_size=8)),
        DLs([ds[i:i+8] for i in range(0, 64, 8)], [ds[i:i+8] for i in range(0, 64, 8)]))]
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) == 2*16

@pytest.mark.parametrize('which', ['ours', 'torch'])
def test_shuffled_dataloaders_train(which):
    set_seed(0)
    x, y = ds_data().tensors
    dl = DataLoader(Dataset(x, y), bs=8, shuffle=True) if which == 'ours' else TorchDataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    ce_learner(dls=DLs(dl, dl), cbs=[TrainCB(), metrics], lr=0.5).fit(3)
    assert metrics.log[-1]['accuracy'] > 0.8

def test_opt_func_gets_lr_by_keyword_and_fit_lr_overrides():
    seen = []
    def opt_func(params, **kw):
        seen.append(kw)
        return torch.optim.SGD(params, **kw)
    learn = ce_learner(cbs=[TrainCB()], lr=0.3, opt_func=opt_func)
    learn.fit(1); learn.fit(1, lr=0.01)
    assert seen == [{'lr': 0.3}, {'lr': 0.01}]

# ---- MetricsCB ---------------------------------------------------------------------------------------------

def test_metrics_log_matches_manual_computation():
    dls = DLs(batches(3, bs=5), batches(3, bs=7, seed=1) + batches(1, bs=2, seed=2))
    metrics = MetricsCB(MulticlassAccuracy())
    learn = Learner(linear(), dls, F.cross_entropy, cbs=[TrainCB(), metrics])
    learn.fit(1, train=False)
    with torch.no_grad():
        preds = torch.cat([learn.model(x) for x, _ in dls.valid]); y = torch.cat([y for _, y in dls.valid])
    (d,) = metrics.log
    assert set(d) == {'MulticlassAccuracy', 'loss', 'epoch', 'train'} and d['epoch'] == 0 and d['train'] == 'eval'
    assert d['MulticlassAccuracy'] == pytest.approx((preds.argmax(1) == y).float().mean().item())
    assert d['loss'] == pytest.approx(F.cross_entropy(preds, y).item(), rel=1e-6)  # weighted by batch size

@pytest.mark.parametrize('every,max_pending', [(5, 2**22), (32, 2**22), (32, 30)])
def test_metrics_grouping_gives_the_same_values(every, max_pending):
    def run(every, max_pending):
        mcb = MetricsCB(acc=MulticlassAccuracy(num_classes=4, average='macro'), top2=MulticlassAccuracy(k=2))
        mcb.update_every, mcb.max_pending = every, max_pending
        learn = Learner(nn.Identity())
        mcb.before_epoch(learn)
        g = torch.Generator().manual_seed(0)
        for n in [16]*11 + [3]:
            learn.preds, learn.batch = torch.randn(n, 4, generator=g), (None, torch.randint(0, 4, (n,), generator=g))
            learn.loss = F.cross_entropy(learn.preds, learn.batch[1])
            mcb.after_batch(learn)
            assert len(mcb._pending) < every
        return {k: v.tolist() for k, v in mcb.compute().items()}
    each, grouped = run(1, 2**22), run(every, max_pending)
    assert each['acc'] == grouped['acc'] and each['top2'] == grouped['top2']
    assert each['loss'] == pytest.approx(grouped['loss'], rel=1e-12)

def test_metrics_log_reset_per_fit_and_names_checked():
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    learn = ce_learner(cbs=[TrainCB(), metrics])
    learn.fit(2)
    assert [(d['epoch'], d['train']) for d in metrics.log] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
    learn.fit(1)
    assert len(metrics.log) == 2 and learn.metrics is metrics
    with pytest.raises(ValueError, match='two metrics named'): MetricsCB(MulticlassAccuracy(), MulticlassAccuracy())
    with pytest.raises(ValueError, match='loss'): MetricsCB(loss=MulticlassAccuracy())

def test_metrics_compute_is_the_hook_for_subclasses():
    class Doubled(MetricsCB):
        def compute(self): return {k: v*2 for k, v in super().compute().items()}
    plain, doubled = MetricsCB(acc=MulticlassAccuracy()), Doubled(acc=MulticlassAccuracy())
    ce_learner(cbs=[TrainCB()]).fit(1, cbs=[plain])
    ce_learner(cbs=[TrainCB()]).fit(1, cbs=[doubled])
    assert doubled.log[-1]['acc'] == pytest.approx(2*plain.log[-1]['acc']) and doubled.log[-1]['loss'] == pytest.approx(2*plain.log[-1]['loss'])

# ---- ProgressCB, DeviceCB, SingleBatchCB -------------------------------------------------------------------------

def test_progress_table_grows_one_row_per_phase(capsys):
    learn = ce_learner(cbs=[TrainCB(), ProgressCB(bar=False), MetricsCB(accuracy=MulticlassAccuracy())])
    learn.fit(2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['accuracy', 'loss', 'epoch', 'train']
    assert [l.split()[2:] for l in lines[1:]] == [['0', 'train'], ['0', 'eval'], ['1', 'train'], ['1', 'eval']]
    learn.remove_cb(learn.cbs[1])
    learn.fit(1)  # MetricsCB prints its dicts again
    assert capsys.readouterr().out.startswith("{'accuracy': ")

def test_progress_bar_and_disabled(capsys):
    ce_learner(cbs=[TrainCB(), MetricsCB(), ProgressCB(bar=True)]).fit(1)
    assert 'epoch 0 train' in capsys.readouterr().err
    ce_learner(cbs=[TrainCB(), MetricsCB(), ProgressCB(bar=True, enabled=False)]).fit(1)
    assert capsys.readouterr() == ('', '')

def test_progress_plot_collects_losses_outside_notebooks(capsys):
    pcb = ProgressCB(plot=True, bar=False)
    ce_learner(cbs=[TrainCB(), MetricsCB(), pcb]).fit(2)
    plot = pcb.loss_plot  # the losses' home: ProgressCB's plot
    assert len(plot.losses) + len(plot.pending) == 4 and [x for x, _ in plot.val_losses] == [2, 4]
    assert plot.fig is None  # no IPython here: nothing drawn

# ---- MetricsCB's hooks: `_log` for a subclass, `show` and `merge` for other callbacks ----------------------------

class LoggedCB(MetricsCB):
    "A subclass showing the log its own way, as the training-loop post's MetricsCB does."
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logged = []
    def _log(self, d): self.logged.append(d)

class VarsCB(Callback):
    "Record, at every epoch's end, which of MetricsCB's methods and hooks are set on the instance."
    order = 5
    def __init__(self): self.seen = []
    def after_epoch(self, learn):
        self.seen.append(sorted(k for k in ('_log', 'compute', 'merge', 'show', 'after_epoch') if k in vars(learn.metrics)))

@pytest.mark.parametrize('progress', [False, True])
def test_a_subclass_log_shows_the_log_with_and_without_progress(progress, capsys):
    m = LoggedCB(acc=MulticlassAccuracy())
    ce_learner(cbs=[TrainCB(), m] + ([ProgressCB(bar=False)] if progress else [])).fit(2)
    assert [(d['epoch'], d['train']) for d in m.logged] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
    assert m.logged == m.log and 'acc' in m.logged[0]
    out = capsys.readouterr()
    assert 'acc' not in out.out + out.err  # the subclass's _log is the only thing that showed the log

def test_progress_sets_only_the_show_hook_and_puts_it_back(capsys):
    m, v = MetricsCB(acc=MulticlassAccuracy()), VarsCB()
    learn = ce_learner(cbs=[TrainCB(), m, ProgressCB(bar=False), v])
    learn.fit(1)
    assert v.seen == [['show'], ['show']] and 'show' not in vars(m) and m.show is None
    assert capsys.readouterr().out.splitlines()[0].split() == ['acc', 'loss', 'epoch', 'train']  # ProgressCB's table
    mine = []
    m.show = mine.append  # a show of the user's own: ProgressCB's replaces it for its fit, then it is back
    learn.fit(1)
    assert vars(m)['show'] == mine.append and mine == [] and 'acc' in capsys.readouterr().out
    learn.remove_cb(learn.cbs[2])
    learn.fit(1)
    assert [d['train'] for d in mine] == ['train', 'eval']

def test_progress_cleanup_without_before_fit_leaves_metrics_alone():
    m, p = MetricsCB(), ProgressCB(bar=False)
    m.show = print
    p.cleanup_fit(None)
    assert vars(m)['show'] is print

def test_merge_hook_is_what_compute_returns_and_only_the_main_process_shows():
    m = MetricsCB(acc=MulticlassAccuracy())
    seen = []
    m.merge = lambda metrics: seen.append(sorted(metrics)) or {k: torch.tensor(7.) for k in metrics}
    learn = ce_learner(cbs=[TrainCB(), m])
    learn.fit(1, valid=False)
    assert seen == [['acc', 'loss']] and m.log[-1]['acc'] == 7. and m.log[-1]['loss'] == 7.
    shown = []
    m.merge, m.show, learn.is_main = None, shown.append, False
    learn.fit(1)
    assert shown == [] and len(m.log) == 2  # logged, not shown
    learn.is_main = True
    learn.fit(1)
    assert [d['train'] for d in shown] == ['train', 'eval']

def test_distributed_cb_sets_no_metrics_method():
    from minitrain.distributed import DistributedCB
    v, m = VarsCB(), MetricsCB()
    ce_learner(cbs=[TrainCB(), m, ProgressCB(bar=False, enabled=False), DistributedCB(), v]).fit(1)
    assert all('_log' not in s and 'compute' not in s for s in v.seen) and not {'_log', 'compute', 'show'} & set(vars(m))

def test_device_cb_moves_model_and_batch():
    class Where(Callback):
        order = 1
        def before_batch(self, learn):
            self.devices = {t.device.type for t in learn.batch}
            raise CancelFitException()
    where = Where()
    learn = ce_learner(cbs=[TrainCB(), DeviceCB('meta'), where])
    learn.fit(1)
    assert where.devices == {'meta'} and next(learn.model.parameters()).device.type == 'meta'

def test_single_batch_cb():
    rec = Rec()
    ce_learner(cbs=[TrainCB(), SingleBatchCB(), rec]).fit(3)
    assert rec.log.count('after_batch') == 1 and rec.log[-1] == 'cleanup_fit' and 'after_fit' not in rec.log

# ---- callbacks: ordering, caching, add/remove ---------------------------------------------------------------

class Mark(Callback):
    def __init__(self, name, order=0, out=None): self.name, self.order, self.out = name, order, out
    def before_fit(self, learn): self.out.append(self.name)
    def __repr__(self): return self.name

def test_order_sorts_and_ties_keep_list_order():
    out = []
    cbs = [Mark('c', 1, out), Mark('a', -1, out), Mark('b1', 0, out), Mark('b2', 0, out)]
    learn = ce_learner(cbs=[TrainCB()] + cbs)
    learn.fit(1)
    assert out == ['a', 'b1', 'b2', 'c']

def test_cached_dispatch_matches_run_cbs():
    rng = random.Random(0)
    for _ in range(20):
        got, want = [], []
        specs = [(f'cb{i}', rng.choice([-1, 0, 0, 1, 5])) for i in range(rng.randint(0, 6))]
        learn = Learner(nn.Identity(), cbs=[Mark(n, o, got) for n, o in specs])
        learn.callback('before_fit')
        run_cbs([Mark(n, o, want) for n, o in specs], 'before_fit', learn)
        assert got == want

def test_cache_follows_changes_to_cbs():
    out = []
    learn = Learner(nn.Identity(), cbs=[Mark('a', 0, out)])
    learn.callback('before_fit')
    learn.cbs.append(Mark('b', -1, out)); learn.callback('before_fit')
    learn.cbs.pop(); learn.callback('before_fit')
    learn.cbs = [Mark('c', 0, out)]; learn.callback('before_fit')
    learn.add_cb(Mark('d', 0, out)); learn.callback('before_fit')
    learn.remove_cb(learn.cbs[0]); learn.callback('before_fit')
    learn.cbs[0].order = 3; learn.cbs[0:0] = [Mark('e', 9, out)]; learn.callback('before_fit')
    assert out == ['a', 'b', 'a', 'a', 'c', 'c', 'd', 'd', 'd', 'e']

def test_add_and_remove_errors():
    learn = Learner(nn.Identity())
    cb = Rec()
    with pytest.raises(TypeError, match=r'pass an instance, TrainCB\(\)'): learn.add_cb(TrainCB)
    with pytest.raises(TypeError, match='subclass'): learn.add_cb(object())
    with pytest.raises(TypeError, match=r'TrainCB\(\)'): Learner(nn.Identity(), cbs=[TrainCB])
    learn.add_cb(cb)
    with pytest.raises(ValueError, match='already'): learn.add_cb(cb)
    with pytest.raises(ValueError, match='already'): learn.fit(1, cbs=[cb])
    other = Rec()
    with pytest.raises(ValueError, match='already'): learn.fit(1, cbs=[other, other])
    assert learn.cbs == [cb]
    learn.remove_cb(cb)
    with pytest.raises(ValueError, match='not one of'): learn.remove_cb(cb)

def test_show_training_loop(capsys):
    ce_learner(MomentumLearner, cbs=[MetricsCB(), DeviceCB()]).show_training_loop()
    lines = {l.split()[0]: l.split(None, 1)[1] for l in capsys.readouterr().out.splitlines()}
    assert lines['before_fit'] == 'MetricsCB, DeviceCB' and lines['before_batch'] == 'DeviceCB'
    assert lines['predict'] == 'TrainLearner.predict' and lines['zero_grad'] == 'MomentumLearner.zero_grad'
    assert lines['after_step'] == '-' and list(lines) == [l.strip() for l in TRAINING_LOOP.splitlines()]
    Learner(nn.Identity()).show_training_loop()
    assert re.search(r'\n +predict +MISSING: add TrainCB\(\)', capsys.readouterr().out)

# ---- fit's arguments --------------------------------------------------------------------------------------

def test_start_epoch_resumes():
    class Epochs(Callback):
        def before_epoch(self, learn): seen.append((learn.epoch, learn.n_epochs, learn.training))
    seen = []
    learn = ce_learner(cbs=[TrainCB(), Epochs()])
    learn.fit(3, start_epoch=1)
    assert seen == [(1, 3, True), (1, 3, False), (2, 3, True), (2, 3, False)] and learn.epochs == range(1, 3)

@pytest.mark.parametrize('kw,match', [({'n_epochs': -1}, 'n_epochs must be an integer'), ({'n_epochs': 1.5}, 'n_epochs'),
                                      ({'n_epochs': 2, 'start_epoch': 3}, 'start_epoch=3 is past n_epochs=2'),
                                      ({'start_epoch': True}, 'start_epoch')])
def test_bad_fit_arguments(kw, match):
    rec = Rec()
    with pytest.raises(ValueError, match=match): ce_learner(cbs=[TrainCB(), rec]).fit(**kw)
    assert rec.log == []

def test_dls_without_train_or_valid():
    learn = Learner(linear(), cbs=[TrainCB()])  # the default dls=(0,)
    with pytest.raises(AttributeError, match=r'learn.dls has no `.train`: pass DataLoaders'): learn.fit(1)

def test_with_cbs_unknown_phase():
    with pytest.raises(ValueError, match="unknown phase 'update'"): with_cbs('update')

def test_training_and_grad_mode_per_phase():
    class Modes(Callback):
        def after_predict(self, learn): seen.add((learn.training, torch.is_grad_enabled(), learn.preds.requires_grad))
    seen = set()
    learn = ce_learner(cbs=[TrainCB(), Modes()])
    learn.fit(1)
    assert seen == {(True, True, True), (False, False, False)}
    learn.training = True
    assert learn.model.training


def test_signature_checks_are_remembered_per_function_not_per_name():
    "The check is cached per function: a bad method on one callback is caught after a good one of the same name was seen."
    class Good(Callback):
        def before_fit(self, learn): pass
    class Bad(Callback):
        def before_fit(self): pass
    learn = Learner(nn.Linear(1, 1), cbs=[Good()])
    with pytest.raises(TypeError, match='Bad.before_fit must take the learner'): learn.add_cb(Bad())
    with pytest.raises(TypeError, match='Bad.before_fit must take the learner'): learn.add_cb(Bad())  # the cached answer
    cb = Good()
    cb.after_fit = lambda: None  # an instance attribute, checked as itself
    with pytest.raises(TypeError, match='Good.after_fit must take the learner'): learn.add_cb(cb)
    learn.add_cb(Good())

def test_guard_rail_checks_are_registered_once_by_name():
    "Each guard rail is in `Learner.checks` once, under a name: running its notebook cell again replaces it."
    # this stage's own (later stages, once imported, add theirs: the data block stage's `valid_images`)
    assert {k: [n for n, f in v.items() if f.__module__ == Learner.__module__] for k, v in Learner.checks.items()} == {
        'cbs': ['callbacks', 'shadowed', 'foreign_names'], 'fit': ['arguments', 'parts'], 'predict': ['layer'],
        'loss': ['loss_targets', 'loss_inputs', 'class_targets'], 'batch': ['lr', 'first_batch', 'trainable'],
        'epoch': ['finite_weights']}
    f = Learner.checks['fit']['arguments']
    Learner.checks['fit'].update(arguments=f)  # what a second run of the cell does
    assert list(Learner.checks['fit']).count('arguments') == 1

# ---- the default loss, and a regression loss on class targets ------------------------------------------------

class VocabDLs(DLs):
    "`dls` that know their targets are categories."
    vocab = ['a', 'b']

def test_default_loss_comes_from_the_data():
    "No `loss_func`: cross-entropy when the DataLoaders have a vocab, else MSE; decided when the learner is built."
    assert Learner(linear(), tiny_dls()).loss_func is F.mse_loss
    assert Learner(linear()).loss_func is F.mse_loss  # the default dls=(0,)
    vd = VocabDLs(batches(2), batches(2, seed=1))
    assert Learner(linear(), vd).loss_func is F.cross_entropy
    assert Learner(linear(), vd, None).loss_func is F.cross_entropy
    assert MomentumLearner(linear(), vd).loss_func is F.cross_entropy
    assert TrainLearner(linear(), dls=vd).loss_func is F.cross_entropy
    vd.vocab = None
    assert Learner(linear(), vd).loss_func is F.mse_loss  # vocab None: not categories

def test_default_loss_with_a_vocab_trains():
    learn = Learner(linear(), VocabDLs(batches(3), batches(1, seed=1)), cbs=[TrainCB()])
    w = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1)
    assert learn.loss_func is F.cross_entropy and torch.isfinite(learn.loss)
    assert any(not torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))

@pytest.mark.parametrize('loss_func', [F.mse_loss, F.l1_loss, nn.MSELoss(), partial(F.mse_loss, reduction='sum')])
def test_explicit_loss_func_is_kept(loss_func):
    "A `loss_func` given (positionally or by name) is used as is, a vocab or not."
    vd = VocabDLs(batches(2), batches(2, seed=1))
    assert Learner(linear(), vd, loss_func).loss_func is loss_func
    assert Learner(linear(), vd, loss_func=loss_func).loss_func is loss_func

class StepSpy(Callback):
    "Count the steps and batches that reached `after_loss`."
    def __init__(self): self.steps = self.losses = 0
    def after_loss(self, learn): self.losses += 1
    def before_step(self, learn): self.steps += 1

@pytest.mark.parametrize('bs', [4, 2])  # 4 vs 2 classes: torch's broadcast error; 2 == 2 classes: a silent epoch
@pytest.mark.parametrize('loss_func', [F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, nn.MSELoss(),
                                       nn.L1Loss(), nn.SmoothL1Loss(), nn.HuberLoss(), partial(F.mse_loss, reduction='sum'),
                                       partial(partial(F.l1_loss), reduction='mean'), None])
def test_regression_loss_on_class_targets_is_refused_at_the_first_batch(loss_func, bs):
    "MSE-style losses on int64 class targets fail before the loss is computed, naming loss_func; no step is taken."
    spy = StepSpy()
    learn = Learner(linear(), tiny_dls(bs=bs), loss_func, cbs=[TrainCB(), spy])
    w = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(TypeError, match=r"targets are class indices \(int64.*loss_func is \w+.*loss_func=F.cross_entropy"):
        learn.fit(1)
    assert (spy.steps, spy.losses) == (0, 0) and learn.fit_status == 'failed'
    assert all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))

def test_refusal_names_the_loss():
    with pytest.raises(TypeError, match='loss_func is mse_loss, a regression loss'):
        Learner(linear(), tiny_dls(), cbs=[TrainCB()]).fit(1)
    with pytest.raises(TypeError, match='loss_func is HuberLoss'):
        Learner(linear(), tiny_dls(), nn.HuberLoss(), cbs=[TrainCB()]).fit(1)

def test_refusal_also_in_a_valid_only_fit_and_every_fit():
    learn = Learner(linear(), tiny_dls(), F.mse_loss, cbs=[TrainCB()])
    for _ in range(2):
        with pytest.raises(TypeError, match='loss_func'): learn.fit(1, train=False)

def _log_softmax_linear():
    return nn.Sequential(linear(), nn.LogSoftmax(-1))

class LabelSmoothingCE(nn.Module):
    "The Imagenette tutorial's label-smoothing loss, shortened."
    def forward(self, output, target):
        log_preds = F.log_softmax(output, dim=-1)
        return -log_preds.sum(-1).mean()*0.1/output.size(-1) + 0.9*F.nll_loss(log_preds, target.long())

@pytest.mark.parametrize('make', [
    lambda: (linear(), F.cross_entropy), lambda: (linear(), nn.CrossEntropyLoss()),
    lambda: (linear(), partial(F.cross_entropy, label_smoothing=0.1)), lambda: (linear(), LabelSmoothingCE()),
    lambda: (_log_softmax_linear(), F.nll_loss), lambda: (_log_softmax_linear(), nn.NLLLoss())])
def test_class_targets_with_a_classification_loss_pass(make):
    model, loss_func = make()
    learn = Learner(model, tiny_dls(), loss_func, cbs=[TrainCB()])
    learn.fit(1)
    assert learn.fit_status == 'done' and torch.isfinite(learn.loss)

def reg_dls(dtype=torch.float32, shape=(4, 1), n=3):
    "Regression batches: 3 features, targets of `shape` and `dtype`."
    g = torch.Generator().manual_seed(0)
    def b(): return (torch.randn(shape[0], 3, generator=g), torch.randint(0, 5, shape, generator=g).to(dtype))
    return DLs([b() for _ in range(n)], [b()])

@pytest.mark.parametrize('loss_func', [None, F.mse_loss, F.l1_loss, nn.MSELoss(), nn.HuberLoss()])
@pytest.mark.parametrize('dtype', [torch.float32, torch.int64])  # int64 of the predictions' shape: counts
def test_regression_targets_pass(loss_func, dtype):
    "Float targets, and integer targets of the predictions' own shape, with a regression loss: a regression."
    if dtype == torch.int64 and isinstance(loss_func, nn.HuberLoss): pytest.skip("torch's huber backward wants floats")
    torch.manual_seed(0)
    learn = Learner(nn.Linear(3, 1), reg_dls(dtype), loss_func, cbs=[TrainCB()])
    w = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1)
    assert learn.fit_status == 'done' and torch.isfinite(learn.loss)
    assert any(not torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))

def test_multi_output_regression_with_float_targets_passes():
    "Predictions (N, k) against float targets (N, k): nothing to refuse."
    torch.manual_seed(0)
    learn = Learner(nn.Linear(3, 2), reg_dls(torch.float32, (4, 2)), cbs=[TrainCB()])
    learn.fit(1)
    assert learn.fit_status == 'done'
