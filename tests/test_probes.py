"""One probe, one meaning of 'restore' (DESIGN.md): after get_preds, summary, lr_find and tta every learner attribute
a callback can read is as it was before the call, after a fit or on a fresh learner, and also when the probe raises."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import SGD
from minitrain.learner import Learner, Callback, TrainCB, DeviceCB, MetricsCB, ProgressCB
import minitrain.schedule, minitrain.hooks, minitrain.augment  # noqa: F401 (they add lr_find, summary, tta)
from minitrain.inference import probe

class Fails(nn.Module):
    "The identity, until `arm(k)`: then its k-th forward pass from there raises."
    def __init__(self): super().__init__(); self.left = None
    def arm(self, k): self.left = k
    def forward(self, x):
        if self.left is not None:
            self.left -= 1
            if self.left == 0: raise RuntimeError('boom')
        return x

class Counts(Callback):
    "A callback a probe keeps (it acts before the batch): its own attributes change as it runs."
    def __init__(self): self.n = 0
    def before_batch(self, learn): self.n += 1

def make_learner():
    set_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 1, 4, 4, generator=g), torch.randint(0, 3, (128,), generator=g)
    dls = DataLoaders.from_dsets(Dataset(x[:64], y[:64]), Dataset(x[64:], y[64:]), bs=16, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), Fails(), nn.Linear(8, 3))
    cbs = [TrainCB(), DeviceCB('cpu'), MetricsCB(acc=MulticlassAccuracy()), ProgressCB(bar=False), Counts()]
    return Learner(model, dls, F.cross_entropy, lr=0.1, opt_func=SGD, cbs=cbs)

PROBES = {'get_preds': lambda l: l.get_preds(), 'summary': lambda l: l.summary(),
          'lr_find': lambda l: l.lr_find(plot=False, max_epochs=2), 'tta': lambda l: l.tta()}
NAMES = ('fit_status', 'fit_error', 'trains', 'validates', 'epoch', 'n_epochs', 'epochs', 'opt', 'dl', 'dls', 'batch',
         'preds', 'loss', 'iter', 'training', 'cbs', 'model', 'lr', 'unchecked')
MISSING = object()

def _get(o, nm):
    try: return getattr(o, nm)
    except AttributeError: return MISSING

def snapshot(learn):
    "What a callback can read, by identity: the learner's and its callbacks' attributes; and the model's state."
    return dict(attrs=dict(vars(learn)), names={nm: _get(learn, nm) for nm in NAMES},
                cbs=[(cb, dict(vars(cb))) for cb in learn.cbs], modes=[m.training for m in learn.model.modules()],
                grads=[p.grad for p in learn.model.parameters()], rng=torch.get_rng_state(),
                weights={k: v.clone() for k, v in learn.model.state_dict().items()})

def assert_as_before(learn, s):
    now = vars(learn)
    added, lost = now.keys() - s['attrs'].keys(), s['attrs'].keys() - now.keys()
    assert not added and not lost, f"learner attributes added {added}, lost {lost}"
    changed = [k for k, v in s['attrs'].items() if now[k] is not v]
    assert not changed, f"learner attributes changed: {changed}"
    changed = [nm for nm, v in s['names'].items() if _get(learn, nm) is not v and _get(learn, nm) != v]
    assert not changed, f"learner attributes changed: {changed}"
    assert [cb for cb, _ in s['cbs']] == list(learn.cbs)
    for cb, d in s['cbs']:
        assert vars(cb).keys() == d.keys() and all(vars(cb)[k] is v for k, v in d.items()), f"{cb!r} changed"
    assert [m.training for m in learn.model.modules()] == s['modes']
    assert all(a is b for a, b in zip((p.grad for p in learn.model.parameters()), s['grads']))
    assert torch.equal(torch.get_rng_state(), s['rng'])
    sd = learn.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in s['weights'].items())

def learner(fitted):
    learn = make_learner()
    if fitted:
        learn.fit(1)
        learn.model.train()
        for p in learn.model.parameters(): p.grad = torch.ones_like(p)
    return learn

@pytest.mark.parametrize('fitted', [True, False], ids=['after_fit', 'fresh'])
@pytest.mark.parametrize('name', PROBES)
def test_probe_leaves_learner_as_it_was(name, fitted, capsys):
    learn = learner(fitted)
    s = snapshot(learn)
    PROBES[name](learn)
    assert_as_before(learn, s)
    assert learn.cbs[-1].n == s['cbs'][-1][1]['n']

@pytest.mark.parametrize('fitted', [True, False], ids=['after_fit', 'fresh'])
@pytest.mark.parametrize('name', PROBES)
def test_probe_that_raises_leaves_learner_as_it_was(name, fitted, capsys):
    learn = learner(fitted)
    s = snapshot(learn)
    learn.model[4].arm(1 if name == 'summary' else 2)  # fails in the first batch (summary runs one) or the second
    with pytest.raises(RuntimeError, match='boom'): PROBES[name](learn)
    learn.model[4].left = None
    assert_as_before(learn, s)

def test_probe_undoes_what_the_block_does():
    learn = learner(True)
    s = snapshot(learn)
    with pytest.raises(KeyError):
        with learn.probe(weights=True) as l:
            assert l is learn and all(cb.in_probes for cb in learn.cbs) and len(learn.cbs) == 3
            learn.fit(1)
            learn.extra = 1
            raise KeyError('stop')
    assert_as_before(learn, s)

def test_probe_keep_and_weights():
    learn = learner(True)
    s = snapshot(learn)
    with probe(learn, keep=lambda cb: isinstance(cb, TrainCB), weights=True):
        assert [type(cb) for cb in learn.cbs] == [TrainCB]
        learn.fit(1)
    assert_as_before(learn, s)
    with probe(learn):  # without weights=True, what the block trains stays trained
        learn.fit(1)
    assert not all(torch.equal(v, learn.model.state_dict()[k]) for k, v in s['weights'].items())
