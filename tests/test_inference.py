"Using a trained model (minitrain.inference): get_preds against a hand-written eval loop, no side effects, NoneReduce, activations, items, plots."
import random
from functools import partial
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader, TensorDataset
from torcheval.metrics import MulticlassAccuracy
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoader, DataLoaders
from minitrain.learner import Learner, Callback, TrainCB, DeviceCB, MetricsCB, ProgressCB, TrainLearner
from minitrain.optimizer import SGD
from minitrain.inference import (NoneReduce, GatherPredsCB, Interpretation, show_batch, loss_activation, loss_decodes,
                                 confusion_matrix, most_confused, in_order, vocab_of, computes_preds, BatchTransformCB)

N_CLS = 4

def make_dls(n=100, bs=16, shuffle=True, vocab=('a', 'b', 'c', 'd')):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, N_CLS, (n,), generator=g)
    dss = [Dataset(x, y), Dataset(x[:60].clone(), y[:60].clone())]
    for ds in dss:
        if vocab is not None: ds.vocab = vocab
    return DataLoaders.from_dsets(*dss, bs=bs, shuffle=shuffle)

def make_model(): return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, N_CLS))

def make_learner(loss_func=F.cross_entropy, cbs=(), **kw):
    set_seed(1)
    return Learner(make_model(), make_dls(**kw), loss_func, lr=0.1, opt_func=SGD,
                   cbs=[TrainCB(), DeviceCB('cpu'), MetricsCB(acc=MulticlassAccuracy()), *cbs])

def eval_loop(model, dl, loss_func=None):
    "The hand-written reference: eval mode, no gradients, outputs and targets (and per-item losses) concatenated."
    model.eval()
    outs, targs, losses = [], [], []
    with torch.no_grad():
        for xb, yb in dl:
            out = model(xb)
            outs.append(out); targs.append(yb)
            if loss_func is not None: losses.append(loss_func(out, yb, reduction='none'))
    return torch.cat(outs), torch.cat(targs), (torch.cat(losses) if losses else None)

@pytest.fixture
def learn():
    l = make_learner()
    l.fit(1)
    return l

# --- equivalence with the hand-written loop

def test_equals_eval_loop_bit_for_bit(learn):
    outs, targs, losses = eval_loop(learn.model, learn.dls.valid, F.cross_entropy)
    p, t = learn.get_preds()
    assert torch.equal(p, F.softmax(outs, dim=-1)) and torch.equal(t, targs)
    p, t, l = learn.get_preds(with_loss=True)
    assert torch.equal(l, losses) and torch.equal(p, F.softmax(outs, dim=-1))
    raw, = learn.get_preds(act=lambda o: o)[:1]
    assert torch.equal(raw, outs)

def test_returns_in_fastai_order(learn):
    x, p, t, d, l = learn.get_preds(with_input=True, with_decoded=True, with_loss=True)
    assert torch.equal(x, learn.dls.valid.ds.x) and torch.equal(d, p.argmax(-1)) and l.shape == t.shape == (60,)

def test_reorder_undoes_shuffling(learn):
    outs, targs, _ = eval_loop(learn.model, DataLoader(learn.dls.train.ds, bs=16))
    p, t = learn.get_preds(dl=learn.dls.train, act=lambda o: o)
    assert torch.equal(p, outs) and torch.equal(t, targs)
    assert in_order(learn.dls.valid) is learn.dls.valid
    p, t = learn.get_preds(dl=learn.dls.train, reorder=False)
    assert len(t) == 100 and not torch.equal(t, targs)  # shuffled

def test_torch_dataloader(learn):
    ds = TensorDataset(learn.dls.valid.ds.x, learn.dls.valid.ds.y)
    outs, targs, losses = eval_loop(learn.model, TorchDataLoader(ds, batch_size=7), F.cross_entropy)
    p, t, l = learn.get_preds(dl=TorchDataLoader(ds, batch_size=7), with_loss=True, act=lambda o: o)
    assert torch.equal(p, outs) and torch.equal(t, targs) and torch.equal(l, losses)
    p, t = learn.get_preds(dl=TorchDataLoader(ds, batch_size=7, shuffle=True, drop_last=True), act=lambda o: o)
    assert torch.equal(p, outs) and torch.equal(t, targs)

def test_mixed_precision():
    from minitrain.accel import MixedPrecisionCB
    set_seed(1)
    learn = Learner(make_model(), make_dls(), F.cross_entropy, lr=0.1, cbs=[MixedPrecisionCB(force=True), DeviceCB('cpu')])
    learn.fit(1)
    p, t, l = learn.get_preds(with_loss=True, act=lambda o: o)
    assert p.dtype == torch.float32 and l.dtype == torch.float32
    outs, _, _ = eval_loop(learn.model, learn.dls.valid)
    with torch.autocast('cpu', dtype=torch.bfloat16): ref = torch.cat([learn.model(xb) for xb, _ in learn.dls.valid]).float()
    assert torch.equal(p, ref) and not torch.equal(p, outs)  # it ran under autocast

class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, N_CLS), nn.Linear(2, N_CLS)
    def forward(self, x1, x2): return self.a(x1) + self.b(x2)

def test_multi_input():
    g = torch.Generator().manual_seed(0)
    x1, x2, y = torch.randn(30, 3, generator=g), torch.randn(30, 2, generator=g), torch.randint(0, N_CLS, (30,), generator=g)
    dl = DataLoader(TensorDataset(x1, x2, y), bs=8)
    learn = Learner(TwoInputs(), DataLoaders(dl, dl), F.cross_entropy, cbs=[TrainCB(n_inp=2)])
    learn.fit(1)
    (i1, i2), p, t, l = learn.get_preds(with_input=True, with_loss=True, act=lambda o: o)
    with torch.no_grad(): ref = learn.model(x1, x2)
    assert torch.equal(i1, x1) and torch.equal(i2, x2) and torch.equal(t, y)
    assert torch.allclose(p, ref) and torch.allclose(l, F.cross_entropy(ref, y, reduction='none'))
    dec, idx, probs = learn.predict_batch((x1[:2], x2[:2]))
    assert torch.equal(idx, ref[:2].argmax(-1)) and dec.tolist() == idx.tolist()  # no vocab: the indices
    dec, idx, probs = learn.predict_item((x1[0], x2[0]))
    assert idx == ref[0].argmax() and probs.shape == (N_CLS,)

def test_train_learner_subclass():
    set_seed(0)
    learn = TrainLearner(make_model(), make_dls(), F.cross_entropy, opt_func=SGD)
    learn.fit(1)
    outs, targs, _ = eval_loop(learn.model, learn.dls.valid)
    assert torch.equal(learn.get_preds(act=lambda o: o)[0], outs)

# --- no side effects

def test_leaves_learner_as_it_was(learn):
    rec = []
    class Spy(Callback):
        def after_batch(self, learn): rec.append(learn.iter)
    spy = Spy()
    learn.add_cb(spy)
    log, cbs, cbs_obj, opt = [dict(d) for d in learn.metrics.log], list(learn.cbs), learn.cbs, learn.opt
    learn.model.train()
    learn.model[3].eval()  # one module in another mode
    for p in learn.model.parameters(): p.grad = torch.ones_like(p)
    random.seed(3); np.random.seed(3); torch.manual_seed(3)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    learn.get_preds(with_loss=True, with_input=True, tfms=[lambda x: x.flip(-1)])
    assert learn.metrics.log == log and learn.cbs is cbs_obj and list(learn.cbs) == cbs and learn.opt is opt
    assert rec == []  # an observer callback is left out of the probe
    assert learn.model.training and not learn.model[3].training
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in learn.model.parameters())
    assert random.getstate() == states[0] and (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])
    assert learn.epoch == 0 and learn.n_epochs == 1

def test_prints_nothing(learn, capsys):
    learn.add_cb(ProgressCB(bar=False))
    capsys.readouterr()
    learn.get_preds()
    assert capsys.readouterr().out == ''

def test_probe_keeps_only_callbacks_that_compute():
    assert computes_preds(TrainCB()) and computes_preds(DeviceCB())
    assert not computes_preds(MetricsCB()) and not computes_preds(ProgressCB())

def test_callback_state_restored():
    from minitrain.accel import MixedPrecisionCB
    mp = MixedPrecisionCB(force=True)
    learn = Learner(make_model(), make_dls(), F.cross_entropy, lr=0.1, cbs=[mp])
    learn.fit(1)
    mp.n_skipped = 5
    learn.get_preds()
    assert mp.n_skipped == 5

# --- activations, decodes, NoneReduce, label smoothing

class LabelSmoothingCE(nn.Module):
    "The Imagenette tutorial's loss."
    def __init__(self, eps=0.1, reduction='mean'):
        super().__init__()
        self.eps, self.reduction = eps, reduction
    def forward(self, output, target):
        c = output.size()[-1]
        log_preds = F.log_softmax(output, dim=-1)
        if self.reduction == 'sum': loss = -log_preds.sum()
        else:
            loss = -log_preds.sum(dim=-1)
            if self.reduction == 'mean': loss = loss.mean()
        return loss*self.eps/c + (1-self.eps) * F.nll_loss(log_preds, target.long(), reduction=self.reduction)
    def activation(self, out): return F.softmax(out, dim=-1)
    def decodes(self, out): return out.argmax(dim=-1)

def test_label_smoothing_ce():
    lf = LabelSmoothingCE()
    learn = make_learner(lf)
    learn.fit(1)
    outs, targs, _ = eval_loop(learn.model, learn.dls.valid)
    p, t, d, l = learn.get_preds(with_decoded=True, with_loss=True)
    assert torch.equal(p, F.softmax(outs, dim=-1)) and torch.equal(d, p.argmax(-1))
    assert torch.allclose(l, LabelSmoothingCE(reduction='none')(outs, targs)) and lf.reduction == 'mean'
    dec, idx, probs = learn.predict_item(learn.dls.valid.ds.x[0])
    assert dec == 'abcd'[idx] and torch.allclose(probs, p[0])
    lf.decodes = lambda out: out.argmin(dim=-1)  # decodes is what decides
    assert torch.equal(learn.get_preds(with_decoded=True)[2], p.argmin(-1))

def test_default_activations():
    x = torch.randn(3, 4)
    for lf in (F.cross_entropy, nn.CrossEntropyLoss(), partial(F.cross_entropy, label_smoothing=0.1)):
        assert torch.equal(loss_activation(lf)(x), F.softmax(x, -1)) and torch.equal(loss_decodes(lf)(x), x.argmax(-1))
    for lf in (F.binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss()):
        assert torch.equal(loss_activation(lf)(x), torch.sigmoid(x)) and torch.equal(loss_decodes(lf)(x), x > 0.5)
    assert loss_activation(F.mse_loss)(x) is x and loss_decodes(F.mse_loss)(x) is x

def test_none_reduce():
    p, t = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    lf = nn.CrossEntropyLoss()
    with NoneReduce(lf) as f: assert f(p, t).shape == (5,) and lf.reduction == 'none'
    assert lf.reduction == 'mean'
    with pytest.raises(RuntimeError):
        with NoneReduce(lf): raise RuntimeError('inside')
    assert lf.reduction == 'mean'  # put back after an error too
    with NoneReduce(F.cross_entropy) as f: assert torch.equal(f(p, t), F.cross_entropy(p, t, reduction='none'))
    with pytest.raises(TypeError, match='reduction'): NoneReduce(lambda p, t: F.cross_entropy(p, t))

def test_regression_losses_per_item():
    set_seed(0)
    x = torch.randn(20, 3); y = torch.randn(20, 2)
    dl = DataLoader(Dataset(x, y), bs=6)
    learn = Learner(nn.Linear(3, 2), DataLoaders(dl, dl), F.mse_loss, cbs=[TrainCB()])
    p, t, l = learn.get_preds(with_loss=True)
    with torch.no_grad(): ref = learn.model(x)
    assert torch.equal(p, ref) and torch.allclose(l, F.mse_loss(ref, y, reduction='none').mean(1))

# --- test-time augmentation hook

def test_tta_averages_activations(learn):
    flip = lambda x: x.flip(-1)
    p, _ = learn.get_preds()
    pf, _ = learn.get_preds(dl=[(flip(x), y) for x, y in learn.dls.valid])
    tta, t = learn.get_preds(tfms=[flip])
    assert torch.allclose(tta, (p + pf) / 2) and torch.equal(t, learn.dls.valid.ds.y)
    two, _ = learn.get_preds(tfms=[flip, flip])
    assert torch.allclose(two, (p + 2*pf) / 3)

# --- items and batches

def test_predict_item_uses_item_tfm(learn):
    ds = learn.dls.valid.ds
    ds.item_tfm = lambda raw: torch.as_tensor(raw, dtype=torch.float32).reshape(1, 4, -1)
    dec, idx, probs = learn.predict_item(ds.x[2].flatten().tolist())
    p, _ = learn.get_preds()
    assert torch.allclose(probs, p[2]) and idx == p[2].argmax() and dec == 'abcd'[idx]
    with pytest.raises(ValueError, match='item_tfm'): learn.predict_item(list(range(20)))

def test_predict_item_bad_shape_or_dtype(learn):
    x = learn.dls.valid.ds.x[0]
    with pytest.raises(ValueError, match=r'shape \(1, 4, 4\)'): learn.predict_item(x[0])
    with pytest.raises(ValueError, match='float64'): learn.predict_item(x.double())
    with pytest.raises(ValueError, match='list'): learn.predict_item([1, 2])

def test_predict_batch(learn):
    xb = learn.dls.valid.ds.x[:5]
    dec, idx, probs = learn.predict_batch(xb)
    p, _ = learn.get_preds()
    assert torch.allclose(probs, p[:5]) and dec == ['abcd'[i] for i in idx.tolist()]

def test_predict_with_fashion_dls():
    from minitrain.datasets import load_fashion_mnist, FASHION_CLASSES
    from minitrain.models import fashion_dls, fashion_item_tfm, mlp
    fm = load_fashion_mnist(source='embedded')
    dls = fashion_dls(256, fm)
    assert vocab_of(dls) == FASHION_CLASSES and dls.train.ds.item_tfm is fashion_item_tfm
    learn = Learner(mlp(), dls, F.cross_entropy, cbs=[TrainCB()])
    dec, idx, probs = learn.predict_item(fm.x_valid[3])
    assert dec == FASHION_CLASSES[idx] and torch.allclose(probs, learn.predict_batch(dls.valid.ds.x[3:4])[2][0])
    assert learn.predict_item(fm.x_valid[3].numpy())[1] == idx
    with pytest.raises(ValueError, match='uint8'): learn.predict_item(fm.x_valid[3].float())
    with pytest.raises(ValueError, match='28'): learn.predict_item(fm.x_valid[:2])

# --- bad input

def test_with_loss_on_unreducible_loss():
    learn = make_learner(lambda p, t: F.cross_entropy(p, t))
    with pytest.raises(TypeError, match='reduction'): learn.get_preds(with_loss=True)
    class Ignores(nn.Module):
        reduction = 'mean'
        def forward(self, p, t): return F.cross_entropy(p, t)
    learn = make_learner(Ignores())
    with pytest.raises(ValueError, match='one loss per item'): learn.get_preds(with_loss=True)
    assert learn.loss_func.reduction == 'mean'

def test_with_loss_without_targets(learn):
    xs = [(learn.dls.valid.ds.x[:8],)]
    p, t = learn.get_preds(dl=xs)
    assert t is None and p.shape == (8, N_CLS)
    with pytest.raises(ValueError, match='inputs only'): learn.get_preds(dl=xs, with_loss=True)
    assert learn.get_preds()[0].shape == (60, N_CLS)  # the failed call left nothing half done

def test_cancelled_batches_raise(learn):
    from minitrain.learner import CancelBatchException, CancelFitException
    class Cancel(Callback):
        def __init__(self, exc): self.exc = exc
        def after_loss(self, learn):
            if learn.iter == 1: raise self.exc()
    for exc in (CancelBatchException, CancelFitException):
        cb = Cancel(exc)
        learn.add_cb(cb)
        with pytest.raises(RuntimeError, match='only .* batches were gathered'): learn.get_preds()
        learn.remove_cb(cb)

def test_bad_arguments(learn):
    with pytest.raises(TypeError, match='act'): learn.get_preds(act='softmax')
    with pytest.raises(TypeError, match='tfms'): learn.get_preds(tfms=['flip'])
    with pytest.raises(TypeError, match='tuples'): learn.get_preds(dl=[learn.dls.valid.ds.x[:4]])
    with pytest.raises(ValueError, match='no batches'): learn.get_preds(dl=[])

# --- showing and interpreting

def test_show_batch_and_results(learn):
    axs = show_batch(learn.dls, n=20)
    assert sum(bool(ax.get_title()) for ax in axs) == 20
    axs = learn.dls.show_batch(3)
    assert [ax.get_title() for ax in axs[:3]] and all(t in 'abcd' for t in (ax.get_title() for ax in axs[:3]))
    axs = learn.show_results(n=12)
    _, p, t, d = learn.get_preds(with_input=True, with_decoded=True)
    wrong = [ax for ax in axs[:12] if '\n' in ax.get_title()]
    assert len(wrong) == int((d[:12] != t[:12]).sum())
    assert all(ax.title.get_color() == 'red' for ax in wrong)
    plt.close('all')

def test_interpretation(learn):
    interp = Interpretation.from_learner(learn)
    p, t, d, l = learn.get_preds(with_decoded=True, with_loss=True)
    cm = interp.confusion_matrix()
    assert torch.equal(cm, confusion_matrix(d, t, N_CLS)) and cm.sum() == 60
    assert interp.most_confused(min_val=1) == most_confused(cm, 'abcd', 1)
    vals, idxs = interp.top_losses(5)
    assert torch.equal(vals, l.topk(5).values) and torch.equal(idxs, l.topk(5).indices)
    assert len(interp.top_losses()[0]) == 60
    axs = interp.plot_top_losses(4)
    assert len([ax for ax in axs if ax.get_title()]) == 4
    interp.plot_confusion_matrix(normalize=True)
    with pytest.raises(ValueError, match='60'): interp.plot_top_losses(61)
    with pytest.raises(ValueError, match='k must'): interp.top_losses(0)
    plt.close('all')

def test_interpretation_without_vocab():
    learn = make_learner(vocab=None)
    interp = Interpretation.from_learner(learn)
    assert interp.vocab == ['0', '1', '2', '3']

def test_confusion_matrix_helpers():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert most_confused(cm, 'abc') == [('c', 'b', 1)]
    with pytest.raises(ValueError, match='predictions'): confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]))

def test_probe_respects_in_probes(learn):
    seen = []
    class Marks(Callback):
        in_probes = False  # the Learner's flag for callbacks a probe run leaves out
        def before_batch(self, learn): seen.append(learn.iter)
    learn.add_cb(Marks())
    learn.get_preds()
    assert seen == []

def test_batch_transform_whole_inputs_or_each():
    "BatchTransformCB (get_preds' test-time transforms too): `tfm(batch)` by default, `tfm` of each input with each=True."
    x, y = torch.randn(8, 3), torch.randint(0, N_CLS, (8,))
    dls = DataLoaders([(x, x[:, :2], y)], [(x, x[:, :2], y)])
    learn = Learner(TwoInputs(), dls, F.cross_entropy, cbs=[TrainCB(n_inp=2)])
    seen = []
    class Rec(Callback):
        order = 100
        def before_batch(self, learn): seen.append(learn.xb)
    each = BatchTransformCB(lambda t: t * 2, on_train=False, on_val=True, each=True, order=99)
    assert each.order == 99 and BatchTransformCB.order == DeviceCB.order + 1
    learn.fit(1, train=False, cbs=[each, Rec()])
    assert len(seen[-1]) == 2 and torch.equal(seen[-1][0], x * 2) and torch.equal(seen[-1][1], x[:, :2] * 2)
    learn.fit(1, train=False, cbs=[BatchTransformCB(lambda b: (b[0] * 3, *b[1:])), Rec()])
    assert torch.equal(seen[-1][0], x * 3) and torch.equal(seen[-1][1], x[:, :2])

def test_in_order_keeps_the_class_and_the_worker_settings():
    "in_order makes its copy with DataLoader.new: a SeededDataLoader stays one, with its timeout, prefetch and workers."
    from minitrain.vision import SeededDataLoader
    x, y = torch.randn(20, 3), torch.arange(20)
    dl = SeededDataLoader(Dataset(x, y), bs=6, shuffle=True, drop_last=True, num_workers=1, timeout=9,
                          prefetch_factor=4, persistent_workers=True)
    o = in_order(dl)
    assert type(o) is SeededDataLoader and o is not dl and o.bs == 6 and not o.batch_sampler.drop_last
    assert (o.num_workers, o.timeout, o.prefetch_factor, o.persistent_workers) == (1, 9, 4, True)
    assert o.collate_fn is dl.collate_fn and not o.sampler.shuffle
    o.num_workers, o.persistent_workers = 0, False             # iterate here: no processes to start in this test
    assert torch.cat([yb for _, yb in o]).tolist() == list(range(20))

def test_input_tfm_cb_is_get_preds_test_time_batch_transform():
    "InputTfmCB(tfm) is the one BatchTransformCB get_preds adds per test-time transform: each input, validation only, last."
    from minitrain.inference import BatchTransformCB, InputTfmCB
    cb = InputTfmCB(torch.flip)
    assert type(cb) is BatchTransformCB and cb.each and cb.on_val and not cb.on_train
    assert cb.order == GatherPredsCB.order - 1
