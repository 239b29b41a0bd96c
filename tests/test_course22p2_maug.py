"""The course's own code (fastai course22p2, package `miniai`) for the "maug" sections, run against minitrain.

Each test runs cells of the course's notebooks as the course writes them (cited by notebook and cell number, counting
from 0 in the notebook's cell list), with `from minitrain.all import *` in place of `from miniai.<x> import *`, on the
embedded Fashion-MNIST subset. Where the course uses something outside minitrain, the substitute is said in a comment:
torchvision's `transforms.RandomCrop`/`RandomHorizontalFlip` and `TF.hflip` (torchvision is not a minitrain
dependency) become `RandCrop`/`RandFlip` and `x.flip(-1)`; the course's `get_model` (ResBlocks over 50,000 images)
becomes a small CNN; `fc.noop` becomes a lambda.
"""
import random
from functools import partial
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from minitrain.all import *

@pytest.fixture(scope='module')
def fm(): return load_fashion_mnist(source='embedded')

def fashion_dls(fm, norm=True, n_train=512, n_valid=256, bs=128):
    "The course's `dls`: normalised 1×28×28 images (unnormalised floats in [0, 1] without `norm`), integer labels."
    xmean, xstd = (0.28, 0.35) if norm else (0., 1.)
    prep = lambda x: ((x.float()/255 - xmean)/xstd)[:, None]
    return DataLoaders.from_dsets(Dataset(prep(fm.x_train[:n_train]), fm.y_train[:n_train]),
                                  Dataset(prep(fm.x_valid[:n_valid]), fm.y_valid[:n_valid]), bs=bs)

def get_model():
    "A stand-in for the course's `get_model` (a small CNN, no BatchNorm on the head)."
    def conv(ni, nf): return nn.Sequential(nn.Conv2d(ni, nf, 3, 2, 1), nn.ReLU())
    return nn.Sequential(conv(1, 8), conv(8, 16), conv(16, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

# 14_augment cell 28: the course's own helper (not exported by miniai)
def tfm_batch(b, tfm_x=lambda x: x, tfm_y=lambda y: y): return tfm_x(b[0]), tfm_y(b[1])

class Seen(Callback):
    "The inputs of every batch the model saw, by phase (after the batch transforms)."
    order = 99
    def before_fit(self, learn): self.seen = {True: [], False: []}
    def before_batch(self, learn): self.seen[learn.training].append(learn.batch[0].clone())

# --- 11_initializing: BatchTransformCB(_norm) normalises training *and* validation batches

def test_11_norm_batch_transform_runs_on_both_phases(fm):
    set_seed(42)
    dls = fashion_dls(fm, norm=False)
    xb, yb = next(iter(dls.train))
    xmean, xstd = xb.mean(), xb.std()                           # cell 80
    def _norm(b): return (b[0]-xmean)/xstd, b[1]                # cell 82
    norm = BatchTransformCB(_norm)
    seen = Seen()
    cbs = [DeviceCB(), seen]
    learn = MomentumLearner(get_model(), dls, F.cross_entropy, lr=0.2, cbs=cbs+[norm])  # cell 83
    learn.fit(1)
    for training in (True, False):
        x = torch.cat(seen.seen[training])
        assert abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.1, f"training={training}: batches not normalised"

# --- 14_augment: augmentation callbacks, show_image_batch

def test_14_augcb_and_show_image_batch(fm):
    dls, lr = fashion_dls(fm), 1e-2
    # cell 28 (torchvision's RandomCrop(28, padding=4) and RandomHorizontalFlip: ours)
    tfms = nn.Sequential(RandCrop(padding=4), RandFlip())
    augcb = BatchTransformCB(partial(tfm_batch, tfm_x=tfms), on_val=False)
    model = get_model()
    learn = TrainLearner(model, dls, F.cross_entropy, lr=lr, cbs=[SingleBatchCB(), augcb])
    set_seed(0); x0 = next(iter(dls.train))[0]
    set_seed(0); learn.fit(1)                                    # cell 29
    xb, yb = learn.batch                                         # cell 30
    show_images(xb[:16], imsize=1.5)
    assert xb.shape == x0.shape and not torch.equal(xb, x0)
    learn.show_image_batch(max_n=16, imsize=(1.5))               # cell 32
    assert len(plt.gcf().axes) >= 16
    plt.close('all')

def test_14_augmentation_leaves_validation_batches_alone(fm):
    dls = fashion_dls(fm, n_train=256, n_valid=128)
    tfms = nn.Sequential(RandCrop(padding=1), RandFlip(), RandErase())   # cell 60, ours for torchvision's
    augcb = BatchTransformCB(partial(tfm_batch, tfm_x=tfms), on_val=False)
    seen = Seen()
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=1e-2, cbs=[DeviceCB(), augcb, seen])  # cell 61
    learn.fit(1)
    assert torch.equal(torch.cat(seen.seen[False]), dls.valid.ds.x)

# --- 14_augment: CapturePreds, capture_preds and test-time augmentation

def test_14_capture_preds_and_tta(fm):
    dls = fashion_dls(fm)
    set_seed(42)
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=1e-2, cbs=[DeviceCB()])
    learn.fit(1)
    ap1, at = learn.capture_preds()                              # cell 40
    ttacb = BatchTransformCB(partial(tfm_batch, tfm_x=lambda x: x.flip(-1)), on_val=True)  # cell 41, TF.hflip
    ap2, at = learn.capture_preds(cbs=[ttacb])
    assert ap1.shape == ap2.shape == (256, 10) and at.shape == (256,)  # cell 42
    ap = torch.stack([ap1, ap2]).mean(0).argmax(1)               # cell 43
    acc = round((ap == at).float().mean().item(), 3)             # cell 44
    assert 0 <= acc <= 1 and not torch.equal(ap1, ap2) and torch.equal(at, dls.valid.ds.y)
    preds, targs, inps = learn.capture_preds(inps=True)
    assert torch.equal(inps, dls.valid.ds.x)
    # ours: the same outputs through get_preds, no activation
    torch.testing.assert_close(learn.get_preds(act=lambda o: o)[0], ap1)
    # cells 78-81: CapturePreds given to fit
    cp1 = CapturePreds()
    learn.fit(1, train=False, cbs=cp1)
    assert torch.equal(cp1.all_preds, ap1) and torch.equal(cp1.all_targs, at) and cp1.all_inps.shape == (256, 1, 28, 28)
    ap = torch.stack([cp1.all_preds, ap2]).mean(0).argmax(1)
    round((ap == cp1.all_targs).float().mean().item(), 3)

def test_get_preds_tfms_and_tta_still_work_with_the_batch_convention(fm):
    "get_preds' test-time transforms (InputTfmCB, each input) equal the course's capture_preds TTA, on probabilities."
    dls = fashion_dls(fm)
    set_seed(42)
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=1e-2, cbs=[DeviceCB()])
    learn.fit(1)
    flip = lambda x: x.flip(-1)
    p, _ = learn.get_preds(tfms=[flip])
    ap1, _ = learn.capture_preds()
    ap2, _ = learn.capture_preds(cbs=[BatchTransformCB(partial(tfm_batch, tfm_x=flip), on_val=True)])
    torch.testing.assert_close(p, (ap1.softmax(-1) + ap2.softmax(-1))/2)
    torch.testing.assert_close(learn.tta(tfms=[flip])[0], p)

# --- 14_augment: rand_erase and rand_copy change the batch in place

def test_14_rand_erase_in_place(fm):
    set_seed(42); random.seed(42)
    dls = fashion_dls(fm)
    xb, _ = next(iter(dls.train))                                # cell 58
    xbt = xb[:16]
    before = xbt.clone()
    rand_erase(xbt, 0.2, 4)
    show_images(xbt, imsize=1.5)
    plt.close('all')
    assert not torch.equal(xbt, before) and not torch.equal(xb[:16], before), "the course shows the batch it passed in"
    assert xbt.min() >= before.min() and xbt.max() <= before.max()
    assert RandErase()(xbt) is xbt                               # cell 59

def test_14_rand_copy_in_place(fm):
    set_seed(42)
    dls = fashion_dls(fm)
    xb, _ = next(iter(dls.train))                                # cell 71
    xbt = xb[:16]
    before = xbt.clone()
    rand_copy(xbt, 0.2, 4)
    show_images(xbt, imsize=1.5)
    plt.close('all')
    assert not torch.equal(xbt, before)
    assert all(torch.isin(xbt[i], before[i]).all() for i in range(16))
    assert RandCopy()(xbt) is xbt                                # cell 72

def test_14_randcopy_augcb_trains(fm):
    dls = fashion_dls(fm, n_train=256, n_valid=128)
    tfms = nn.Sequential(RandCrop(padding=1), RandFlip(), RandCopy())   # cell 73, ours for torchvision's
    augcb = BatchTransformCB(partial(tfm_batch, tfm_x=tfms), on_val=False)
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=1e-2, cbs=[DeviceCB(), SingleBatchCB(), augcb])
    learn.fit(1)                                                 # cell 74
    xb, yb = learn.batch
    assert xb.shape == (128, 1, 28, 28) and yb.shape == (128,)

# --- 14_augment: GlobalAvgPool and summary

def test_14_global_avg_pool_and_summary(fm):
    dls = fashion_dls(fm)
    def get_model3(nfs=(8, 16, 32)):                             # cell 17, smaller
        layers = [nn.Conv2d(1, nfs[0], 5, 1, 2), nn.ReLU()]
        layers += [nn.Sequential(nn.Conv2d(nfs[i], nfs[i+1], 3, 2, 1), nn.ReLU()) for i in range(len(nfs)-1)]
        layers += [GlobalAvgPool(), nn.Linear(nfs[-1], 10, bias=False), nn.BatchNorm1d(10)]
        return nn.Sequential(*layers)
    x = torch.randn(4, 32, 7, 7)
    assert torch.equal(GlobalAvgPool()(x), x.mean((-2, -1)))     # cell 12
    s = TrainLearner(get_model3(), dls, F.cross_entropy, lr=1e-2, cbs=[DeviceCB()]).summary()  # cell 18
    assert 'GlobalAvgPool' in str(s)

# --- ours: the callback's guard rails say what the course's convention expects

def test_a_function_of_the_inputs_given_the_batch_says_each(fm):
    learn = TrainLearner(get_model(), fashion_dls(fm), F.cross_entropy, lr=1e-2, cbs=[BatchTransformCB(rand_flip)])
    with pytest.raises(ValueError, match=r'each=True'): learn.fit(1, cbs=[SingleBatchCB()])
    def in_place_only(b): b[0].mul_(1)
    learn = TrainLearner(get_model(), fashion_dls(fm), F.cross_entropy, lr=1e-2, cbs=[BatchTransformCB(in_place_only)])
    with pytest.raises(TypeError, match='returned None'): learn.fit(1, cbs=[SingleBatchCB()])
