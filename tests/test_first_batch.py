"""Issue 28, item 3: the first-batch contract names the mistake, with its fix, before any step changes weights.

Each bad case used to end in a raw torch error (or one after the first backward pass); each good case next to it
must still train."""
import functools, warnings
import pytest, torch
import torch.nn.functional as F
from torch import nn
from minitrain.data import DataLoader, DataLoaders, Dataset
from minitrain.learner import Callback, Learner, TrainCB, TrainLearner

X, Y = torch.randn(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


def dls(x=X, y=Y, bs=4): return DataLoaders(DataLoader(Dataset(x, y), bs=bs), DataLoader(Dataset(x, y), bs=bs))


class Net(nn.Module):
    def __init__(self): super().__init__(); self.lin = nn.Linear(5, 3)
    def forward(self, x): return self.lin(x)

class NoneNet(Net):
    def forward(self, x): self.lin(x)

class TupleNet(Net):
    def forward(self, x): return self.lin(x), x


def frozen():
    m = Net(); m.requires_grad_(False); return m


def weights(model): return [p.detach().clone() for p in model.parameters()]


def refused(learn, exc, match, **kw):
    "`learn.fit(1)` raises `exc` matching `match`, and no weight changed."
    w0 = weights(learn.model) if isinstance(learn.model, nn.Module) else []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(exc, match=match) as info: learn.fit(1, **kw)
    assert not w0 or all(torch.equal(a, b) for a, b in zip(w0, learn.model.parameters()))
    return info.value


def mk(model=None, x=X, y=Y, loss_func=F.cross_entropy, **kw):
    return Learner(Net() if model is None else model, dls(x, y), loss_func, cbs=[TrainCB()], **kw)


BAD = {
    'float64 inputs': (lambda: mk(x=X.double()), RuntimeError, r'inputs are float64 but its weights are float32.*x\.to'),
    'uint8 inputs': (lambda: mk(x=(X * 10).abs().to(torch.uint8)), RuntimeError,
                     r'inputs are uint8 but its weights are float32.*x\.float\(\)'),
    'too many features': (lambda: mk(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))), RuntimeError,
                          r"layer '0' \(Linear.*takes 4 features.*shape \(4, 5\), 5 features.*nn\.Linear\(5, 6\)"),
    'conv channels': (lambda: mk(nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten()), x=torch.randn(8, 3, 5, 5)),
                      RuntimeError, r"layer '0' \(Conv2d.*takes 1 channels.*3 channels.*Conv2d\(3, \.\.\.\)"),
    'float class targets': (lambda: mk(y=Y.float()), TypeError, r'targets are float32.*class indices.*y\.long\(\)'),
    '(N,1) targets': (lambda: mk(y=Y[:, None]), ValueError, r'shape \(4, 1\).*one class index per row.*squeeze\(1\)'),
    'label >= outputs': (lambda: mk(y=Y + 1), ValueError, r'target .* is 3, but the model has 3 outputs.*4 outputs'),
    'negative label': (lambda: mk(y=Y - 1), ValueError, r'target .* is -1.*must not be negative'),
    'label >= outputs, nn loss': (lambda: mk(y=Y + 1, loss_func=nn.CrossEntropyLoss()), ValueError,
                                  r'3 outputs.*CrossEntropyLoss'),
    'string labels': (lambda: mk(y=['cat', 'dog'] * 4), TypeError, r"targets are strings \('cat'.*class indices"),
    'model returns None': (lambda: mk(NoneNet()), TypeError, r'returned None.*`return`'),
    'model returns a tuple': (lambda: mk(TupleNet()), TypeError, r'returned a tuple of 2.*learn\.preds\[0\]'),
    'every parameter frozen': (lambda: mk(frozen()), RuntimeError, r'every parameter .* frozen.*requires_grad_\(True\)'),
    'loss_func a class': (lambda: mk(loss_func=nn.CrossEntropyLoss), TypeError,
                          r'loss_func is the class nn\.CrossEntropyLoss.*nn\.CrossEntropyLoss\(\)'),
    'loss_func a string': (lambda: mk(loss_func='cross_entropy'), TypeError, r"string 'cross_entropy'.*F\.cross_entropy"),
    'loss_func a string (class name)': (lambda: mk(loss_func='CrossEntropyLoss'), TypeError,
                                        r'nn\.CrossEntropyLoss\(\)'),
    'opt_func=None': (lambda: mk(opt_func=None), ValueError, r'no optimizer.*opt_func=SGD'),
    'opt_func an optimizer': (lambda: mk(opt_func=torch.optim.SGD(Net().parameters(), lr=0.1)), TypeError,
                              r'opt_func must make an optimizer'),
    'model a class': (lambda: mk(Net), TypeError, r'model is the class Net.*Net\(\.\.\.\)'),
    'model a function': (lambda: mk(lambda: Net()), TypeError, r'not a model.*call it'),
}


@pytest.mark.parametrize('case', list(BAD))
def test_first_batch_names_the_mistake(case):
    make, exc, match = BAD[case]
    e = refused(make(), exc, match)
    assert str(e).startswith('fit: ')


def test_model_class_with_trainlearner():
    refused(TrainLearner(Net, dls(), F.cross_entropy), TypeError, 'model is the class Net')


def test_the_torch_error_stays_the_cause():
    e = refused(mk(x=X.double()), RuntimeError, 'float64')
    assert isinstance(e.__cause__, RuntimeError) and 'dtype' in str(e.__cause__)


def test_the_failing_layer_is_found_inside_nested_modules_and_hooks_are_removed():
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Sequential(nn.ReLU(), nn.Linear(3, 3)))
    learn = mk(model)
    refused(learn, RuntimeError, r"layer '2\.1' \(Linear.*takes 3 features.*4 features")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_predict_error_that_is_not_the_models_passes_through():
    class Boom(TrainLearner):
        def predict(self): raise KeyError('boom')
    with pytest.raises(KeyError, match='boom') as info: Boom(Net(), dls(), F.cross_entropy).fit(1)
    assert info.value.__cause__ is None


def test_checks_run_on_the_first_batch_only_and_in_validation_only_fits():
    refused(mk(y=Y + 1), ValueError, '3 outputs', train=False)  # validation-only fit: the targets are still checked
    learn = mk(frozen())
    learn.fit(1, train=False)  # a frozen model may be validated


GOOD = {
    'class probabilities (float targets of the predictions\' shape)':
        lambda: mk(y=F.one_hot(Y, 3).float()),
    'ignore_index targets': lambda: mk(y=torch.where(torch.arange(8) % 3 == 0, -100, Y)),
    'ignore_index of a partial': lambda: mk(y=torch.where(torch.arange(8) % 3 == 0, 7, Y),
                                            loss_func=functools.partial(F.cross_entropy, ignore_index=7)),
    'nll_loss on log-probabilities': lambda: Learner(nn.Sequential(Net(), nn.LogSoftmax(-1)), dls(), F.nll_loss,
                                                     cbs=[TrainCB()]),
    'float64 model and inputs': lambda: mk(Net().double(), x=X.double()),
    'regression on (N, 1) float targets': lambda: mk(nn.Linear(5, 1), y=torch.randn(8, 1), loss_func=F.mse_loss),
    'a tuple from the model with a loss that takes it':
        lambda: mk(TupleNet(), loss_func=lambda p, y: F.cross_entropy(p[0], y)),
    'an embedding on integer inputs': lambda: mk(nn.Sequential(nn.Embedding(10, 3), nn.Flatten()),
                                                 x=torch.randint(0, 10, (8, 1))),
    'part of the model frozen': lambda: mk(nn.Sequential(nn.Linear(5, 4).requires_grad_(False), nn.Linear(4, 3))),
    'a loss module instance': lambda: mk(loss_func=nn.CrossEntropyLoss()),
}


@pytest.mark.parametrize('case', list(GOOD))
def test_good_first_batches_still_train(case):
    learn = GOOD[case]()
    w0 = weights(learn.model)
    learn.fit(1)
    assert learn.fit_status == 'done'
    assert any(not torch.equal(a, b) for a, b in zip(w0, learn.model.parameters()))


def test_opt_func_none_with_an_optimizer_from_a_callback_or_a_step_of_ones_own():
    class MakeOpt(Callback):
        def before_fit(self, learn): learn.opt = torch.optim.SGD(learn.model.parameters(), lr=0.1)
    learn = Learner(Net(), dls(), F.cross_entropy, cbs=[TrainCB(), MakeOpt()], opt_func=None)
    learn.fit(1)
    assert learn.fit_status == 'done'

    class ManualSGD(TrainLearner):
        def step(self):
            with torch.no_grad():
                for p in self.model.parameters(): p -= 0.1 * p.grad
        def zero_grad(self): self.model.zero_grad()
    learn = ManualSGD(Net(), dls(), F.cross_entropy, opt_func=None)
    w0 = weights(learn.model)
    learn.fit(1)
    assert learn.fit_status == 'done' and not torch.equal(w0[0], learn.model.lin.weight)


def test_a_cancel_raised_in_predict_is_not_diagnosed():
    from minitrain.learner import CancelBatchException
    calls = []
    class Counting(Net):
        def forward(self, x): calls.append(len(x)); return super().forward(x)
    class SkipFirst(TrainLearner):
        def predict(self):
            if self.training and self.iter == 0: raise CancelBatchException()
            self.preds = self.model(*self.xb)
    learn = SkipFirst(Counting(), dls(), F.cross_entropy)
    learn.fit(1)
    assert learn.fit_status == 'done' and len(calls) == 3  # the model ran once per batch that was not skipped
