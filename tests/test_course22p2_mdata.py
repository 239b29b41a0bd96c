"""The course's own code (fastai course22p2, package `miniai`) for the data, learner and schedule sections, as the
course writes it, with `from minitrain.all import *` in place of `from miniai.<x> import *` (issue 31).

Each test cites the course notebook and cell it runs (cell numbers count every cell of the notebook from 0). Two
stand-ins replace what is not installed here: `load_dataset` (Hugging Face `datasets`) gives a `DatasetDict` of
dict-of-lists datasets over the embedded Fashion-MNIST subset, its images uint8 tensors in place of PIL images, and
`TF.to_tensor` (torchvision) turns one into a float tensor of one channel, as torchvision's does for a PIL image.
"""
import math
from functools import partial
from operator import itemgetter
from types import SimpleNamespace

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim, tensor
from torch.optim import lr_scheduler
from torcheval.metrics import MulticlassAccuracy

from minitrain.all import *

fc = pytest.importorskip('fastcore.all')

N_TRAIN, N_TEST = 2000, 500

class HFDataset:
    "A stand-in for a Hugging Face `Dataset`: columns as lists; `ds[i]` a dict, `ds[a:b]` a dict of lists."
    def __init__(self, cols, tfm=None): self.cols, self.tfm = cols, tfm
    @property
    def features(self): return {k: None for k in self.cols}  # HF's `Features` is a dict of the columns, in order
    def __len__(self): return len(self.cols['label'])
    def __getitem__(self, i):
        if isinstance(i, str): return self.cols[i]
        if isinstance(i, slice):
            b = {k: v[i] for k, v in self.cols.items()}
            return b if self.tfm is None else self.tfm(b)
        b = {k: [v[i]] for k, v in self.cols.items()}  # `datasets` gives the transform a batch of one item
        if self.tfm is not None: b = self.tfm(b)
        return {k: v[0] for k, v in b.items()}
    def with_transform(self, f): return HFDataset(self.cols, f)

class DatasetDict(dict):
    "A stand-in for a Hugging Face `DatasetDict`."
    def with_transform(self, f): return DatasetDict({k: v.with_transform(f) for k, v in self.items()})

def load_dataset(name):
    assert name == 'fashion_mnist'
    fm = load_fashion_mnist(source='embedded')
    return DatasetDict(train=HFDataset({'image': list(fm.x_train[:N_TRAIN]), 'label': fm.y_train[:N_TRAIN].tolist()}),
                       test=HFDataset({'image': list(fm.x_valid[:N_TEST]), 'label': fm.y_valid[:N_TEST].tolist()}))

TF = SimpleNamespace(to_tensor=lambda o: o[None].float()/255)  # torchvision's, on a uint8 H×W image

@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close('all')

@pytest.fixture(scope='module')
def dls():
    # 09_learner cells 6-9 (with num_workers=4, as written)
    x, y = 'image', 'label'
    name = "fashion_mnist"
    dsd = load_dataset(name)

    @inplace
    def transformi(b): b[x] = [torch.flatten(TF.to_tensor(o)) for o in b[x]]

    bs = 1024
    tds = dsd.with_transform(transformi)
    dls = DataLoaders.from_dd(tds, bs, num_workers=4)
    dt = dls.train
    xb, yb = next(iter(dt))
    assert xb.shape == (1024, 784) and yb.shape == (1024,)
    # the rest of the tests load in this process: four workers for every epoch cost more than the epochs here
    return DataLoaders.from_dd(tds, 256)

m, nh = 28*28, 50
def get_model(): return nn.Sequential(nn.Linear(m, nh), nn.ReLU(), nn.Linear(nh, 10))  # 09_learner cell 20

# --- 04_minibatch_training (miniai.training) ---

def test_training_fit_report_accuracy(dls):
    # 04_minibatch_training: accuracy (cell 36), report (cell 39), fit and get_dls (cells 149-150)
    fm = load_fashion_mnist(source='embedded')
    x_train, y_train = fm.x_train[:N_TRAIN].float().flatten(1)/255, fm.y_train[:N_TRAIN]
    x_valid, y_valid = fm.x_valid[:N_TEST].float().flatten(1)/255, fm.y_valid[:N_TEST]
    bs = 50
    train_ds, valid_ds = Dataset(x_train, y_train), Dataset(x_valid, y_valid)
    torch.manual_seed(1)
    model = get_model()
    loss_func = F.cross_entropy
    preds = model(x_train[:bs])
    assert 0 <= accuracy(preds, y_train[:bs]) <= 1
    report(loss_func(preds, y_train[:bs]), preds, y_train[:bs])
    train_dl, valid_dl = get_dls(train_ds, valid_ds, bs)
    assert valid_dl.bs == 2*bs and train_dl.sampler.shuffle and not valid_dl.sampler.shuffle
    opt = optim.SGD(model.parameters(), lr=0.5)
    loss, acc = fit(2, model, loss_func, opt, train_dl, valid_dl)
    assert acc > 0.4  # chance is 0.1

# --- 05_datasets ---

def test_datasets_inplace_collate_dict():
    x, y = 'image', 'label'
    dsd = load_dataset("fashion_mnist")
    train, test = dsd['train'], dsd['test']
    # cells 22-27
    def _transformi(b): b[x] = [torch.flatten(TF.to_tensor(o)) for o in b[x]]
    transformi = inplace(_transformi)
    r = train.with_transform(transformi)[0]
    assert r[x].shape == (784,) and r[y] == train[y][0]
    @inplace
    def transformi(b): b[x] = [torch.flatten(TF.to_tensor(o)) for o in b[x]]
    tdsf = train.with_transform(transformi)
    # cells 31-34: collate_dict in PyTorch's DataLoader
    assert list(tdsf.features) == [x, y]
    dlf = torch.utils.data.DataLoader(tdsf, batch_size=4, collate_fn=collate_dict(tdsf))
    xb, yb = next(iter(dlf))
    assert xb.shape == (4, 784) and torch.equal(yb, tensor(train[y][:4]))
    # cell 51: DataLoaders.from_dd
    dls = DataLoaders.from_dd(DatasetDict(train=tdsf, test=test.with_transform(transformi)), 64)
    xb, yb = next(iter(dls.valid))
    assert xb.shape == (128, 784) and torch.equal(yb, tensor(test[y][:128]))

def test_datasets_show_images():
    x, y = 'image', 'label'
    def transforms(b):  # cells 20-21
        b[x] = [TF.to_tensor(o) for o in b[x]]
        return b
    tds = load_dataset("fashion_mnist")['train'].with_transform(transforms)
    dl = DataLoaders.from_dd(DatasetDict(train=tds, test=tds), 16, as_tuple=False).valid
    b = next(iter(dl))
    xb = b['image']
    img = xb[0]
    show_image(img, figsize=(2, 2))  # cell 39
    fig, axs = plt.subplots(1, 2)  # cell 40
    show_image(img, axs[0])
    show_image(xb[1], axs[1])
    fig, axs = subplots(3, 3, imsize=1)  # cell 44
    imgs = xb[:8]
    for ax, img in zip(axs.flat, imgs): show_image(img, ax)
    assert tuple(fig.get_size_inches()) == (3, 3)
    fig, axs = get_grid(8, nrows=3, imsize=1)  # cell 46 (the course's get_grid gives 3×2 here, ours 3×3)
    for ax, img in zip(axs.flat, imgs): show_image(img, ax)
    assert len(axs.flat) >= 8
    yb = b['label']  # cells 48-50
    lbls = yb[:8]
    names = "Top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Boot".split()
    titles = itemgetter(*lbls)(names)
    show_images(imgs, imsize=1.7, titles=titles)
    assert [ax.get_title() for ax in plt.gcf().axes[:8]] == list(titles)
    fig, axes = get_grid(4, figsize=(11, 5))  # 10_activations cell 54
    assert tuple(fig.get_size_inches()) == (11, 5) and len(axes.flatten()) == 4

# --- 09_learner ---

class CompletionCB(Callback):  # cell 17
    def before_fit(self, learn): self.count = 0
    def after_batch(self, learn): self.count += 1
    def after_fit(self, learn): print(f'Completed {self.count} batches')

class Learner19():  # cell 19, the course's first Learner with callbacks
    def __init__(self, model, dls, loss_func, lr, cbs, opt_func=optim.SGD): fc.store_attr()

    def one_batch(self):
        self.preds = self.model(self.batch[0])
        self.loss = self.loss_func(self.preds, self.batch[1])
        if self.model.training:
            self.loss.backward()
            self.opt.step()
            self.opt.zero_grad()

    def one_epoch(self, train):
        self.model.train(train)
        self.dl = self.dls.train if train else self.dls.valid
        try:
            self.callback('before_epoch')
            for self.iter, self.batch in enumerate(self.dl):
                try:
                    self.callback('before_batch')
                    self.one_batch()
                    self.callback('after_batch')
                except CancelBatchException: pass
            self.callback('after_epoch')
        except CancelEpochException: pass

    def fit(self, n_epochs):
        self.n_epochs = n_epochs
        self.epochs = range(n_epochs)
        self.opt = self.opt_func(self.model.parameters(), self.lr)
        try:
            self.callback('before_fit')
            for self.epoch in self.epochs:
                self.one_epoch(True)
                self.one_epoch(False)
            self.callback('after_fit')
        except CancelFitException: pass

    def callback(self, method_nm): run_cbs(self.cbs, method_nm, self)

class with_cbs49:  # cell 48
    def __init__(self, nm): self.nm = nm
    def __call__(self, f):
        def _f(o, *args, **kwargs):
            try:
                o.callback(f'before_{self.nm}')
                f(o, *args, **kwargs)
                o.callback(f'after_{self.nm}')
            except globals()[f'Cancel{self.nm.title()}Exception']: pass
            finally: o.callback(f'cleanup_{self.nm}')
        return _f

class Learner49():  # cell 49, the course's final minimal Learner
    def __init__(self, model, dls=(0,), loss_func=F.mse_loss, lr=0.1, cbs=None, opt_func=optim.SGD):
        cbs = fc.L(cbs)
        fc.store_attr()

    @with_cbs49('batch')
    def _one_batch(self):
        self.predict()
        self.callback('after_predict')
        self.get_loss()
        self.callback('after_loss')
        if self.training:
            self.backward()
            self.callback('after_backward')
            self.step()
            self.callback('after_step')
            self.zero_grad()

    @with_cbs49('epoch')
    def _one_epoch(self):
        for self.iter, self.batch in enumerate(self.dl): self._one_batch()

    def one_epoch(self, training):
        self.model.train(training)
        self.dl = self.dls.train if training else self.dls.valid
        self._one_epoch()

    @with_cbs49('fit')
    def _fit(self, train, valid):
        for self.epoch in self.epochs:
            if train: self.one_epoch(True)
            if valid: torch.no_grad()(self.one_epoch)(False)

    def fit(self, n_epochs=1, train=True, valid=True, cbs=None, lr=None):
        cbs = fc.L(cbs)
        for cb in cbs: self.cbs.append(cb)
        try:
            self.n_epochs = n_epochs
            self.epochs = range(n_epochs)
            if lr is None: lr = self.lr
            if self.opt_func: self.opt = self.opt_func(self.model.parameters(), lr)
            self._fit(train, valid)
        finally:
            for cb in cbs: self.cbs.remove(cb)

    def __getattr__(self, name):
        if name in ('predict', 'get_loss', 'backward', 'step', 'zero_grad'): return partial(self.callback, name)
        raise AttributeError(name)

    def callback(self, method_nm): run_cbs(self.cbs, method_nm, self)

    @property
    def training(self): return self.model.training

def test_learner_callbacks_on_the_course_learner(dls, capsys):
    model = get_model()  # cells 21-23
    learn = Learner19(model, dls, F.cross_entropy, lr=0.2, cbs=[CompletionCB()])
    learn.fit(1)
    assert 'Completed' in capsys.readouterr().out
    learn = Learner19(get_model(), dls, F.cross_entropy, lr=0.2, cbs=[SingleBatchCB(), CompletionCB()])
    learn.fit(1)
    assert 'Completed' not in capsys.readouterr().out
    model = get_model()  # cell 37: DeviceCB and MetricsCB on the learner of cell 19
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    learn = Learner19(model, dls, F.cross_entropy, lr=0.2, cbs=[DeviceCB(), metrics])
    learn.fit(1)
    assert [d['train'] for d in metrics.log] == ['train', 'eval'] and metrics.log[-1]['accuracy'] > 0.3

def test_learner_train_cb_progress_on_the_course_learner(dls):
    model = get_model()  # cell 50
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [TrainCB(), DeviceCB(), metrics, ProgressCB(plot=True)]
    learn = Learner49(model, dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    assert metrics.log[-1]['accuracy'] > 0.3 and learn.metrics is metrics
    extra = CompletionCB()  # 10_activations cell 11: cbs+fc.L(xtra_cbs), here for the course's learner's fit
    learn.fit(1, cbs=extra)
    assert extra.count == len(dls.train) + len(dls.valid)

def test_learner_ours_with_fastcore_L(dls):
    # 10_activations cells 10-11: the callbacks as `cbs+fc.L(xtra_cbs)`, given to our Learner
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [TrainCB(), DeviceCB(), metrics, ProgressCB(plot=True)]
    def fit(model, epochs=1, xtra_cbs=None):
        learn = Learner(model, dls, loss_func=F.cross_entropy, lr=0.6, cbs=cbs+fc.L(xtra_cbs))
        learn.fit(epochs)
        return learn
    learn = fit(get_model())
    assert len(learn.cbs) == 4 and metrics.log[-1]['accuracy'] > 0.3
    learn = fit(get_model(), xtra_cbs=[SingleBatchCB()])
    assert len(learn.cbs) == 5 and learn.iter == 0
    learn = TrainLearner(get_model(), dls, F.cross_entropy, cbs=fc.L(DeviceCB()))  # an L of one callback
    learn.fit(1, cbs=fc.L([SingleBatchCB()]))
    assert len(learn.cbs) == 1

def test_learner_momentum_and_lr_finder(dls):
    metrics = MetricsCB(accuracy=MulticlassAccuracy())  # cell 54 (NB: no TrainCB)
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    learn = MomentumLearner(get_model(), dls, F.cross_entropy, lr=0.1, cbs=cbs)
    learn.fit(1)
    assert metrics.log[-1]['accuracy'] > 0.3
    lrfind = LRFinderCB()  # cells 57-58 (miniai's LRFinderCB(gamma=1.3, max_mult=3), in the library since lesson 18)
    cbs = [DeviceCB()]
    learn = MomentumLearner(get_model(), dls, F.cross_entropy, lr=1e-4, cbs=cbs)
    learn.fit(3, cbs=lrfind)
    plt.plot(lrfind.lrs, lrfind.losses)
    plt.xscale('log')
    assert all(math.isclose(b/a, 1.3) for a, b in zip(lrfind.lrs, lrfind.lrs[1:]))
    assert LRFinderCB(gamma=1.1, max_mult=4).gamma == 1.1 and LRFinderCB(lr_mult=2).gamma == 2
    MomentumLearner(get_model(), dls, F.cross_entropy, cbs=cbs).lr_find()  # cell 63

def test_initializing_and_resnet_lr_find(dls):
    # 11_initializing cell 6 and 13_resnet cell 20 (cbs as one callback)
    res = MomentumLearner(get_model(), dls, F.cross_entropy, cbs=[DeviceCB()]).lr_find(gamma=1.1, start_lr=1e-2)
    assert all(math.isclose(b/a, 1.1) for a, b in zip(res.lrs, res.lrs[1:])) and res.lrs[0] == 1e-2
    MomentumLearner(get_model(), dls, F.cross_entropy, cbs=DeviceCB()).lr_find()

# --- 12_accel_sgd ---

def _lr(cb): return cb.pg['lr']  # cell 50
def _beta1(cb): return cb.pg['betas'][0]  # cell 59

def test_accel_sgd_schedulers(dls):
    metrics = MetricsCB(accuracy=MulticlassAccuracy())  # cell 6, without ActivationStats (the models stage's)
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    set_seed(42)  # cells 51-52
    epochs = 2
    tmax = epochs * len(dls.train)
    sched = partial(lr_scheduler.OneCycleLR, max_lr=6e-2, total_steps=tmax)
    model = get_model()
    rec = RecorderCB(lr=_lr)
    xtra = [BatchSchedCB(sched), rec]
    learn = TrainLearner(model, dls, F.cross_entropy, lr=2e-2, cbs=cbs+xtra, opt_func=optim.AdamW)
    learn.fit(epochs)
    rec.plot()
    assert len(rec.recs['lr']) == tmax and max(rec.recs['lr']) == pytest.approx(6e-2, rel=0.05)
    sched = partial(lr_scheduler.CosineAnnealingLR, T_max=3)  # cell 55
    set_seed(42)
    rec = RecorderCB(lr=_lr, mom=_beta1)
    xtra = [EpochSchedCB(sched), rec]
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=2e-2, cbs=cbs+xtra, opt_func=optim.AdamW)
    learn.fit(2)
    lrs = rec.recs['lr']
    n = len(dls.train)
    assert lrs[0] == lrs[n-1] == 2e-2 and lrs[n] < 2e-2 and rec.recs['mom'][0] == 0.9

def test_accel_sgd_has_learn_cb(dls):
    # cell 47: HasLearnCB holds the learner during fit only
    class LossCB(HasLearnCB):
        def after_batch(self, learn): self.seen = self.learn is learn
    cb = LossCB()
    TrainLearner(get_model(), dls, F.cross_entropy, cbs=[cb, SingleBatchCB()]).fit(1)
    assert cb.seen and cb.learn is None
