"""The course texts, typed into minitrain.

Students type what the course texts show: the fastai Imagenette tutorial (docs.fast.ai
`tutorial.imagenette`), notes on fastbook ch. 16 (optimizers and callbacks), the fastai v1 training
overview (`training.html`), "The Ultimate Training Loop" post (miniai's Learner, fastai course part 2)
and notes on the 2019 "Deep Learning from the Foundations" lesson 2. This module walks their code
blocks, with fastai-only names translated to minitrain's where minitrain has them. The rule: each
idiom either does what the text says, or fails at once (an error or a warning) with a message that
names the minitrain way. Nothing silent. One test per idiom, the text quoted in a comment.

The Imagenette text's data path and training run on a tiny generated folder laid out as Imagenette is
(`imagenette_path`): the factory, the data block step by step, the mid-level `Datasets`, an `xresnet`
`Learner`, `LabelSmoothingCE` with `activation`/`decodes`, `OptimWrapper`, Mixup, `lr_find`/`fit_one_cycle`;
`cnn_learner` is a stub naming minitrain's way (tests/test_models.py tests it and the other model stubs).

Blocks left out, because they belong to other libraries or need the network: `untar_data` (tested offline in
tests/test_vision.py), `accelerate`, torchvision, fastcore's `print_source`/`help(event)`, fastai internals
(`Learner._do_one_batch`), and the 2019 lesson's own `Runner`/`CallbackHandler`/`DataBunch`, which the lesson
defines itself.
"""
import math, warnings
from functools import partial
import pytest
import torch
from torch import nn, optim
import torch.nn.functional as F
from torcheval.metrics import MulticlassAccuracy
from minitrain.all import *


def cls_data(n=64, bs=16, seed=0):
    "A tiny two-class problem: DataLoaders over 4 features."
    set_seed(seed)
    x = torch.randn(n, 4)
    y = (x[:, 0] + 0.5*x[:, 1] > 0).long()
    return DataLoaders.from_dsets(Dataset(x, y), Dataset(x[:32], y[:32]), bs=bs)

def img_data(n=32, bs=8, seed=0):
    "A tiny image problem: 1x8x8 images, 10 classes, as the post's Fashion-MNIST CNN takes them."
    set_seed(seed)
    x = torch.randn(n, 1, 8, 8)
    return DataLoaders.from_dsets(Dataset(x, torch.arange(n) % 10), Dataset(x[:16], torch.arange(16) % 10), bs=bs)

def get_model():  # the post's CNN
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

def params(model): return [p.detach().clone() for p in model.parameters()]

def changed(a, b): return any(not torch.equal(x, y) for x, y in zip(a, b))

def silent(fn):
    "Run `fn` and fail if it warns: used where a text's idiom should just work."
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        return fn()


# ---------------------------------------------------------------------------------------------
# fastai tutorial: Training a model on Imagenette

def test_imagenette_fit_one_cycle_positional_lr_max():
    # learn.fit_one_cycle(5, 5e-3)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=Adam)
    silent(lambda: learn.fit_one_cycle(2, 5e-3))
    assert max(learn.recorder.recs['lr']) == pytest.approx(5e-3, rel=0.05)

def test_imagenette_lr_find_prints_a_short_suggestion():
    # learn.lr_find()
    #     SuggestedLRs(lr_min=0.0013182567432522773, lr_steep=0.0010000000474974513)
    learn = Learner(nn.Linear(4, 2), cls_data(256), F.cross_entropy, cbs=[TrainCB()], opt_func=Adam)
    res = learn.lr_find(plot=False)
    assert repr(res).startswith('SuggestedLRs(valley=') and '\n' not in repr(res) and len(repr(res)) < 80
    assert res.lr_min == res.minimum and res.lr_steep == res.steep

def test_imagenette_custom_loss_module():
    # class LabelSmoothingCE(Module): ... def forward(self, output, target): ...
    # learn = Learner(dls, xresnet34(n_out=10), loss_func=LabelSmoothingCE(), metrics=accuracy)
    class LabelSmoothingCE(nn.Module):
        def __init__(self, eps=0.1, reduction='mean'): super().__init__(); self.eps, self.reduction = eps, reduction
        def forward(self, output, target):
            c = output.size()[-1]
            log_preds = F.log_softmax(output, dim=-1)
            loss = -log_preds.sum(dim=-1).mean()
            return loss*self.eps/c + (1-self.eps) * F.nll_loss(log_preds, target.long(), reduction=self.reduction)
    learn = Learner(nn.Linear(4, 2), cls_data(), loss_func=LabelSmoothingCE(), cbs=[TrainCB(), MetricsCB(accuracy=accuracy)])
    w = params(learn.model)
    learn.fit(1)
    assert changed(w, params(learn.model)) and 'accuracy' in learn.metrics.log[-1]

def test_imagenette_pytorch_adamw_and_scheduled_beta0():
    # def pytorch_adamw(param_groups, **kwargs): return OptimWrapper(torch.optim.AdamW(...))
    # learn.fit_one_cycle(5, 5e-3)   (and thanks to the wrapper, fastai will properly schedule the beta0 of AdamW)
    # minitrain takes torch optimizers as they are: opt_func=partial(torch.optim.AdamW, weight_decay=0.01, eps=1e-3)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()],
                    opt_func=partial(torch.optim.AdamW, weight_decay=0.01, eps=1e-3))
    silent(lambda: learn.fit_one_cycle(2, 5e-3))
    moms = learn.recorder.recs['mom']
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=0.01)
    assert learn.opt.param_groups[0]['betas'][0] == pytest.approx(moms[-1])

def test_imagenette_pytorch_adamw_as_written():
    # @delegates(torch.optim.AdamW.__init__)
    # def pytorch_adamw(param_groups, **kwargs):
    #     return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))
    # learn = Learner(dls, xresnet18(), lr=1e-2, metrics=accuracy, loss_func=LabelSmoothingCrossEntropy(),
    #                 opt_func=partial(pytorch_adamw, wd=0.01, eps=1e-3))
    # learn.lr_find()
    # learn.fit_one_cycle(5, 5e-3)
    @delegates(torch.optim.AdamW.__init__)
    def pytorch_adamw(param_groups, **kwargs):
        return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))
    learn = Learner(nn.Linear(4, 2), cls_data(), lr=1e-2, loss_func=F.cross_entropy, cbs=[TrainCB()],
                    opt_func=partial(pytorch_adamw, wd=0.01, eps=1e-3))
    assert learn.lr_find(plot=False).lrs[0] == 1e-5
    silent(lambda: learn.fit_one_cycle(5, 5e-3))  # 4 batches an epoch: the peak falls on batch 5
    assert max(learn.recorder.recs['lr']) == pytest.approx(5e-3, rel=1e-12)
    assert all(pg['weight_decay'] == 0.01 and pg['eps'] == 1e-3 for pg in learn.opt.param_groups)
    assert min(learn.recorder.recs['mom']) == pytest.approx(0.85, abs=0.01)  # AdamW's beta0, scheduled

def test_imagenette_plain_pytorch_loop_over_a_dataloader():
    # for xb,yb in dl:
    #     pred = model(xb); loss = loss_func(pred, yb); loss.backward(); opt.step(); opt.zero_grad()
    dl, model = cls_data().train, nn.Linear(4, 2)
    opt = SGD(model.parameters(), lr=0.1)
    w = params(model)
    for xb, yb in dl:
        loss = F.cross_entropy(model(xb), yb)
        loss.backward(); opt.step(); opt.zero_grad()
    assert changed(w, params(model))

def test_imagenette_single_callback_as_cbs():
    # learn = Learner(dls, xresnet18(), ..., cbs=Mixup(), ...)
    class Count(Callback):
        n = 0
        def after_batch(self, learn): self.n += 1
    cb, dls = Count(), cls_data()
    Learner(nn.Linear(4, 2), dls, F.cross_entropy, cbs=cb, opt_func=SGD).add_cb(TrainCB()).fit(1)
    assert cb.n == len(dls.train) + len(dls.valid)


# The Imagenette text's data path and training, on a tiny folder laid out as Imagenette is (two classes,
# `train/` and `val/`, JPEGs of random sizes): each test walks its blocks in the text's order, as written
# after the documented renames (Learner's model first, metrics as MetricsCB, callbacks taking `learn`).

IMAGENETTE_CODES = {'n01440764': 'tench', 'n03028079': 'church'}  # the text's lbl_dict, two of its classes

@pytest.fixture(scope='module')
def imagenette_path(tmp_path_factory):
    import numpy as np
    from PIL import Image
    root, rng = tmp_path_factory.mktemp('imagenette'), np.random.default_rng(0)
    for split, n in (('train', 8), ('val', 4)):
        for k, code in enumerate(IMAGENETTE_CODES):
            (root/split/code).mkdir(parents=True)
            for i in range(n):  # the classes differ in brightness, so a model can learn them
                size = (int(rng.integers(16, 33)), int(rng.integers(16, 33)), 3)
                a = rng.integers(0, 96, size) + 128*k
                Image.fromarray(a.astype(np.uint8)).save(root/split/code/f'{code}_{i}.JPEG')
    return root

def imagenette_dls(path, bs=8):
    "The text's DataBlock (`imagenette`), at 16 pixels."
    lbl_dict = IMAGENETTE_CODES
    imagenette = DataBlock(blocks = (ImageBlock, CategoryBlock),
                           get_items = get_image_files,
                           get_y = Pipeline([parent_label, lbl_dict.__getitem__]),
                           splitter = GrandparentSplitter(valid_name='val'),
                           item_tfms = RandomResizedCrop(16, min_scale=0.35),
                           batch_tfms = Normalize.from_stats(*imagenet_stats))
    set_seed(0)
    return imagenette.dataloaders(path, bs=bs)

def test_imagenette_factory_from_folder(imagenette_path):
    # dls = ImageDataLoaders.from_folder(path, valid='val',
    #     item_tfms=RandomResizedCrop(128, min_scale=0.35), batch_tfms=Normalize.from_stats(*imagenet_stats))
    # dls.show_batch()
    import matplotlib; matplotlib.use('Agg')
    path = imagenette_path
    dls = ImageDataLoaders.from_folder(path, valid='val',
        item_tfms=RandomResizedCrop(16, min_scale=0.35), batch_tfms=Normalize.from_stats(*imagenet_stats))
    xb, yb = dls.one_batch()
    assert xb.dtype == torch.float32 and xb.shape[1:] == (3, 16, 16) and float(xb.mean().abs()) < 3
    assert list(dls.vocab) == sorted(IMAGENETTE_CODES) and (len(dls.train.ds), len(dls.valid.ds)) == (16, 8)
    silent(lambda: dls.show_batch())

def test_imagenette_data_block_step_by_step(imagenette_path, capsys):
    # fnames = get_image_files(path); dblock = DataBlock(); dsets = dblock.datasets(fnames); dsets.train[0]
    # dblock = DataBlock(get_items = get_image_files); dsets = dblock.datasets(path); dsets.train[0]
    # parent_label(fnames[0]); def label_func(fname): return lbl_dict[parent_label(fname)]
    # dblock = DataBlock(get_items = get_image_files, get_y = label_func) ...
    # dblock = DataBlock(blocks = (ImageBlock, CategoryBlock), ...); dsets.vocab
    # ... splitter = GrandparentSplitter(), item_tfms = RandomResizedCrop(128, min_scale=0.35), batch_tfms=...
    # dls = dblock.dataloaders(path); dls.show_batch()
    import matplotlib; matplotlib.use('Agg')
    from PIL import Image
    path, lbl_dict = imagenette_path, IMAGENETTE_CODES
    fnames = get_image_files(path)
    dblock = DataBlock()
    dsets = dblock.datasets(fnames)
    assert dsets.train[0] == (fnames[0], fnames[0])
    dblock = DataBlock(get_items = get_image_files)
    dsets = dblock.datasets(path)
    assert dsets.train[0] == (fnames[0], fnames[0])
    assert parent_label(fnames[0]) == 'n01440764'
    def label_func(fname):
        return lbl_dict[parent_label(fname)]
    dblock = DataBlock(get_items = get_image_files,
                       get_y     = label_func)
    dsets = dblock.datasets(path)
    assert dsets.train[0] == (fnames[0], 'tench')
    dblock = DataBlock(blocks    = (ImageBlock, CategoryBlock),
                       get_items = get_image_files,
                       get_y     = label_func)
    dsets = dblock.datasets(path)
    x, y = dsets.train[0]
    assert isinstance(x, Image.Image) and x.mode == 'RGB' and int(y) == 1  # vocab sorted: church, tench
    assert list(dsets.vocab) == ['church', 'tench']
    dblock = DataBlock(blocks    = (ImageBlock, CategoryBlock),
                       get_items = get_image_files,
                       get_y     = label_func,
                       splitter  = GrandparentSplitter())
    dsets = dblock.datasets(path)
    assert (len(dsets.train), len(dsets.valid)) == (16, 8)  # minitrain's default valid folder is `val`
    dblock = DataBlock(blocks    = (ImageBlock, CategoryBlock),
                       get_items = get_image_files,
                       get_y     = label_func,
                       splitter  = GrandparentSplitter(),
                       item_tfms = RandomResizedCrop(16, min_scale=0.35),
                       batch_tfms=Normalize.from_stats(*imagenet_stats))
    dls = dblock.dataloaders(path, bs=4)
    silent(lambda: dls.show_batch())
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 16, 16) and xb.dtype == torch.float32
    dls = imagenette_dls(path)  # get_y = Pipeline([parent_label, lbl_dict.__getitem__]), GrandparentSplitter(valid_name='val')
    assert list(dls.vocab) == ['church', 'tench'] and len(dls.valid.ds) == 8
    DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=label_func,
              item_tfms=RandomResizedCrop(16)).summary(path)
    out = capsys.readouterr().out
    assert 'label_func' in out and 'RandomResizedCrop' in out and 'Normalize' not in out

def test_imagenette_mid_level_datasets(imagenette_path):
    # PILImage.create(fnames[0]); lbl_dict[parent_label(fnames[0])]
    # tfm = Pipeline([parent_label, lbl_dict.__getitem__, Categorize(vocab = lbl_dict.values())]); tfm(fnames[0])
    # splits = GrandparentSplitter(valid_name='val')(fnames)
    # dsets = Datasets(fnames, [[PILImage.create], [parent_label, lbl_dict.__getitem__, Categorize]], splits=splits)
    # dsets[0]; dsets.show(dsets[0]);
    # item_tfms = [ToTensor, RandomResizedCrop(128, min_scale=0.35)]
    # batch_tfms = [IntToFloatTensor, Normalize.from_stats(*imagenet_stats)]
    # dls = dsets.dataloaders(after_item=item_tfms, after_batch=batch_tfms, bs=64, num_workers=8); dls.show_batch()
    import matplotlib; matplotlib.use('Agg')
    source, lbl_dict = imagenette_path, IMAGENETTE_CODES
    fnames = get_image_files(source)
    assert PILImage.create(fnames[0]).mode == 'RGB' and lbl_dict[parent_label(fnames[0])] == 'tench'
    tfm = Pipeline([parent_label, lbl_dict.__getitem__, Categorize(vocab = lbl_dict.values())])
    assert int(tfm(fnames[0])) == 1  # the given vocabulary is sorted, as fastai does
    splits = GrandparentSplitter(valid_name='val')(fnames)
    dsets = Datasets(fnames, [[PILImage.create], [parent_label, lbl_dict.__getitem__, Categorize]], splits=splits)
    assert list(dsets.vocab) == ['church', 'tench'] and int(dsets[0][1]) == 1
    silent(lambda: dsets.show(dsets[0]))
    item_tfms = [ToTensor, RandomResizedCrop(16, min_scale=0.35)]
    batch_tfms = [IntToFloatTensor, Normalize.from_stats(*imagenet_stats)]
    dls = dsets.dataloaders(after_item=item_tfms, after_batch=batch_tfms, bs=64, num_workers=2)
    silent(lambda: dls.show_batch())
    xb, yb = dls.one_batch()
    assert xb.shape == (16, 3, 16, 16) and xb.dtype == torch.float32 and float(xb.mean().abs()) < 3

def test_imagenette_cnn_learner_names_learner_and_xresnet(imagenette_path):
    # learn = cnn_learner(dls, resnet34, metrics=accuracy, pretrained=False)
    with pytest.raises(NotImplementedError, match=r'Learner\(xresnet34'):
        cnn_learner(imagenette_dls(imagenette_path), resnet34, metrics=accuracy, pretrained=False)

def test_imagenette_xresnet_learner_lr_find_fit_one_cycle_show_results(imagenette_path):
    # learn = Learner(dls, xresnet34(n_out=10), metrics=accuracy)
    # learn.lr_find(); learn.fit_one_cycle(5, 1e-3); learn.show_results()
    import matplotlib; matplotlib.use('Agg')
    dls = imagenette_dls(imagenette_path)
    learn = Learner(xresnet34(n_out=2, widen=0.25), dls, cbs=[TrainCB(), DeviceCB(), MetricsCB(accuracy=accuracy)], opt_func=Adam)
    assert learn.loss_func is F.cross_entropy  # chosen from the data: the DataLoaders have a vocab
    silent(lambda: learn.lr_find(plot=False))
    w = params(learn.model)
    silent(lambda: learn.fit_one_cycle(1, 1e-3))
    assert changed(w, params(learn.model)) and 'accuracy' in learn.metrics.log[-1]
    silent(lambda: learn.show_results())

class LabelSmoothingCE(nn.Module):  # the text's, from fastai's Module: nn.Module with super().__init__()
    def __init__(self, eps=0.1, reduction='mean'): super().__init__(); self.eps,self.reduction = eps,reduction

    def forward(self, output, target):
        c = output.size()[-1]
        log_preds = F.log_softmax(output, dim=-1)
        if self.reduction=='sum': loss = -log_preds.sum()
        else:
            loss = -log_preds.sum(dim=-1) #We divide by that size at the return line so sum and not mean
            if self.reduction=='mean':  loss = loss.mean()
        return loss*self.eps/c + (1-self.eps) * F.nll_loss(log_preds, target.long(), reduction=self.reduction)

    def activation(self, out): return F.softmax(out, dim=-1)
    def decodes(self, out):    return out.argmax(dim=-1)

def test_imagenette_label_smoothing_ce_activation_and_decodes(imagenette_path):
    # learn = Learner(dls, xresnet34(n_out=10), loss_func=LabelSmoothingCE(), metrics=accuracy)
    # learn.fit_one_cycle(5, 1e-3); learn.predict(fnames[0]); learn.show_results()
    import matplotlib; matplotlib.use('Agg')
    dls = imagenette_dls(imagenette_path)
    learn = Learner(xresnet18(n_out=2, widen=0.25), dls, loss_func=LabelSmoothingCE(),
                    cbs=[TrainCB(), DeviceCB(), MetricsCB(accuracy=accuracy)], opt_func=Adam)
    silent(lambda: learn.fit_one_cycle(1, 1e-3))
    preds, targs, decoded, losses = learn.get_preds(with_decoded=True, with_loss=True)
    assert torch.allclose(preds.sum(1), torch.ones(len(preds)))  # the loss's activation ran
    assert torch.equal(decoded, preds.argmax(1)) and losses.shape == targs.shape  # its decodes; reduction='none'
    fn = get_image_files(imagenette_path)[0]
    label, idx, probs = learn.predict_item(fn)
    assert label == dls.vocab[int(idx)] and int(idx) == int(probs.argmax()) and float(probs.sum()) == pytest.approx(1)
    silent(lambda: learn.show_results())

from torch.distributions.beta import Beta

class Mixup(Callback):  # the text's, in minitrain's style: methods take `learn`, run_valid=False as a first line
    def __init__(self, alpha=0.4): self.distrib = Beta(torch.tensor(alpha), torch.tensor(alpha))

    def before_batch(self, learn):
        if not learn.training: return
        x, y = learn.xb[0], learn.yb[0]
        self.t = self.distrib.sample((y.size(0),)).squeeze().to(x.device)
        shuffle = torch.randperm(y.size(0)).to(x.device)
        x1,self.y1 = x[shuffle],y[shuffle]
        learn.xb = (x1 * (1-self.t[:,None,None,None]) + x * self.t[:,None,None,None],)

    def after_loss(self, learn):
        if not learn.training: return
        with NoneReduce(learn.loss_func) as lf:
            loss = lf(learn.preds,self.y1) * (1-self.t) + lf(learn.preds,learn.yb[0]) * self.t
        learn.loss = loss.mean()

def test_imagenette_optim_wrapper_and_mixup_as_written(imagenette_path):
    # @delegates(torch.optim.AdamW.__init__)
    # def pytorch_adamw(param_groups, **kwargs):
    #     return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))
    # learn = Learner(dls, xresnet18(), lr=1e-2, metrics=accuracy,
    #                 loss_func=LabelSmoothingCrossEntropy(), cbs=Mixup(),
    #                 opt_func=partial(pytorch_adamw, wd=0.01, eps=1e-3))
    # learn.lr_find(); learn.fit_one_cycle(5, 5e-3)
    @delegates(torch.optim.AdamW.__init__)
    def pytorch_adamw(param_groups, **kwargs):
        return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))
    seen = []
    class Spy(Callback):
        order = Mixup.order + 1
        def before_batch(self, learn): seen.append((learn.training, learn.xb[0].dtype, float(learn.xb[0].mean().abs())))
    dls = imagenette_dls(imagenette_path)
    learn = Learner(xresnet18(widen=0.25), dls, lr=1e-2,  # the text's xresnet18(), a quarter as wide (fast)
                    loss_func=LabelSmoothingCrossEntropy(),
                    cbs=[TrainCB(), DeviceCB(), MetricsCB(accuracy=accuracy), Mixup(), Spy()],
                    opt_func=partial(pytorch_adamw, wd=0.01, eps=1e-3))
    silent(lambda: learn.lr_find(plot=False))
    silent(lambda: learn.fit_one_cycle(5, 5e-3))
    assert 0.8*5e-3 < max(learn.recorder.recs["lr"]) <= 5e-3  # the peak falls between two of its 10 batches
    assert all(pg['weight_decay'] == 0.01 and pg['eps'] == 1e-3 for pg in learn.opt.param_groups)
    assert min(learn.recorder.recs['mom']) == pytest.approx(0.85, abs=0.01)  # AdamW's beta0, scheduled
    assert all(dt == torch.float32 and m < 3 for _, dt, m in seen)  # Mixup mixed normalised float batches
    assert {tr for tr, _, _ in seen} == {True, False} and 'accuracy' in learn.metrics.log[-1]


# ---------------------------------------------------------------------------------------------
# fastbook ch. 16 notes

def test_fastbook_sgd_baseline_without_momentum():
    # learn = get_learner(opt_func=SGD)
    # learn.fit_one_cycle(3, 0.03, moms=(0,0,0))       # Disable momentum for baseline
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=SGD)
    silent(lambda: learn.fit_one_cycle(2, 0.03, moms=(0, 0, 0)))
    assert max(learn.recorder.recs['lr']) == pytest.approx(0.03, rel=0.05)

def test_fastbook_default_optimizer_with_one_cycle_warns():
    # learn = get_learner()              # Default fastai optimizer (Adam)
    # learn.fit_one_cycle(3, 0.003)
    # minitrain's default is the post's SGD, which has no momentum: fit_one_cycle says so, names the fixes
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    with pytest.warns(UserWarning, match=r'does not use momentum.*moms=None.*opt_func=Adam'): learn.fit_one_cycle(1, 0.003)
    assert 'mom' not in learn.recorder.recs

def test_fastbook_sgd_cb_stepper():
    # def sgd_cb(p, lr, **kwargs): p.data.add_(-lr, p.grad.data)
    # opt_func = partial(Optimizer, cbs=[sgd_cb])
    def sgd_cb(p, lr, **kwargs): p.data.add_(p.grad.data, alpha=-lr)  # torch's current argument order
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=partial(Optimizer, cbs=[sgd_cb]))
    w = params(learn.model)
    learn.fit(1, lr=0.03)
    assert changed(w, params(learn.model)) and learn.opt.param_groups[0]['lr'] == 0.03

def test_fastbook_momentum_steppers_are_scheduled():
    # def average_grad(p, mom, grad_avg=None, **kwargs): ...
    # def momentum_step(p, lr, grad_avg, **kwargs): p.data.add_(-lr, grad_avg)
    # opt_func = partial(Optimizer, cbs=[average_grad,momentum_step], mom=0.9)
    # learn.fit_one_cycle(3, 0.03)          # Learner automatically schedules the momentum and learning rate
    def average_grad(p, mom, grad_avg=None, **kwargs):
        if grad_avg is None: grad_avg = torch.zeros_like(p.grad.data)
        return {'grad_avg': grad_avg*mom + p.grad.data}
    def momentum_step(p, lr, grad_avg, **kwargs): p.data.add_(grad_avg, alpha=-lr)
    opt_func = partial(Optimizer, cbs=[average_grad, momentum_step], mom=0.9)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=opt_func)
    silent(lambda: learn.fit_one_cycle(2, 0.03))
    assert learn.recorder.recs['mom'][0] == pytest.approx(0.95) and min(learn.recorder.recs['mom']) < 0.9

def test_fastbook_plot_sched_after_fit_one_cycle():
    # learn.recorder.plot_sched()
    import matplotlib; matplotlib.use('Agg')
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=partial(SGD, mom=0.9))
    learn.fit_one_cycle(1, 0.03)
    assert len(learn.recorder.plot_sched()) == 2  # lr and mom

def test_fastbook_rmsprop_steppers_with_one_cycle_warn():
    # opt_func = partial(Optimizer, cbs=[average_sqr_grad,rms_prop_step], sqr_mom=0.99, eps=1e-7)
    # learn.fit_one_cycle(3, 0.003)
    def average_sqr_grad(p, sqr_mom, sqr_avg=None, **kwargs):
        if sqr_avg is None: sqr_avg = torch.zeros_like(p.grad.data)
        return {'sqr_avg': sqr_mom*sqr_avg + (1-sqr_mom)*p.grad.data**2}
    def rms_prop_step(p, lr, sqr_avg, eps, grad_avg=None, **kwargs):
        p.data.addcdiv_(p.grad, sqr_avg.sqrt().add_(eps), value=-lr)
    opt_func = partial(Optimizer, cbs=[average_sqr_grad, rms_prop_step], sqr_mom=0.99, eps=1e-7)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=opt_func)
    with pytest.warns(UserWarning, match='moms=None'): learn.fit_one_cycle(1, 0.003)
    silent(lambda: learn.fit_one_cycle(1, 0.003, moms=None))

def test_fastbook_adam_names():
    # def Adam(params, lr, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.01, decouple_wd=True):
    #     cbs = [weight_decay] if decouple_wd else [l2_reg]
    #     cbs += [partial(average_grad, dampening=True), average_sqr_grad, step_stat, adam_step]
    #     return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)
    p = nn.Parameter(torch.ones(3))
    opt = Optimizer([p], [weight_decay, partial(average_grad, dampening=True), average_sqr_grad, step_stat, adam_step],
                    lr=0.1, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.01)
    ref = Adam([q := nn.Parameter(torch.ones(3))], lr=0.1)
    for o, w in ((opt, p), (ref, q)):
        w.grad = torch.tensor([1., -1., 2.]); o.step()
    assert torch.equal(p, q) and debias(0.9, 0.1, 1) == pytest.approx(0.1)

def test_fastbook_callback_events_that_exist():
    # after_loss, before_batch, after_step, after_batch, after_epoch, after_fit, before_fit, before_epoch
    for e in ('before_fit', 'before_epoch', 'before_batch', 'after_loss', 'after_step', 'after_batch', 'after_epoch', 'after_fit'):
        assert e in EVENTS

def test_fastbook_terminate_on_nan():
    # class TerminateOnNaNCallback(Callback):
    #     def after_batch(self):
    #         if torch.isinf(self.loss) or torch.isnan(self.loss): raise CancelFitException
    class TerminateOnNaNCallback(Callback):
        def after_batch(self, learn):
            if torch.isinf(learn.loss) or torch.isnan(learn.loss): raise CancelFitException
    # A loss that turns NaN after the first batch (a NaN on the very first batch is refused earlier, loudly,
    # by the Learner's first-batch check: tests/test_reliability.py).
    calls = []
    def nan_loss(preds, targs):
        calls.append(1)
        return F.cross_entropy(preds, targs) * (float('nan') if len(calls) > 1 else 1.)
    learn = Learner(nn.Linear(4, 2), cls_data(), nan_loss, cbs=[TrainCB(), TerminateOnNaNCallback()])
    learn.fit(3)
    assert learn.epoch == 0 and learn.iter == 1  # stopped after the second batch, the first NaN


# ---------------------------------------------------------------------------------------------
# fastai v1 training overview

def test_v1_recorder_plot_lr_show_moms():
    # learn.fit_one_cycle(1)
    # learn.recorder.plot_lr(show_moms=True)
    import matplotlib; matplotlib.use('Agg')
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()], opt_func=partial(SGD, mom=0.9))
    silent(lambda: learn.fit_one_cycle(1))
    assert len(learn.recorder.plot_lr(show_moms=True)) == 2
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])  # no momentum: it says what is missing
    with pytest.warns(UserWarning, match='moms=None'): learn.fit_one_cycle(1)
    with pytest.raises(ValueError, match=r"recorded no \['mom'\].*rec_mom"): learn.recorder.plot_lr(show_moms=True)

def test_v1_fit_with_callbacks_keyword_is_an_error():
    # cb = OneCycleScheduler(learn, lr_max=0.01)
    # learn.fit(1, callbacks=cb)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    with pytest.raises(TypeError, match='callbacks'): learn.fit(1, callbacks=[RecorderCB()])


# ---------------------------------------------------------------------------------------------
# "The Ultimate Training Loop" post

def post_metrics(): return MetricsCB(accuracy=MulticlassAccuracy())

class PostTrainLearner(Learner):  # class TrainLearner(Learner): ...  (as the post writes it)
    def predict(self): self.preds = self.model(self.batch[0])
    def get_loss(self): self.loss = self.loss_func(self.preds, self.batch[1])
    def backward(self): self.loss.backward()
    def step(self): self.opt.step()
    def zero_grad(self): self.opt.zero_grad()

class PostMomentumLearner(PostTrainLearner):  # class MomentumLearner(TrainLearner): ...
    def __init__(self, model, dls=(0,), loss_func=F.mse_loss, lr=0.1, cbs=None, opt_func=optim.SGD, mom=0.85):
        self.mom = mom
        super().__init__(model, dls, loss_func, lr, cbs, opt_func)
    def zero_grad(self):
        for p in self.model.parameters(): p.grad *= self.mom

class PostTrainCB(Callback):  # class TrainCB(Callback): ...
    def predict(self, learn): learn.preds = learn.model(learn.batch[0])
    def get_loss(self, learn): learn.loss = learn.loss_func(learn.preds, learn.batch[1])
    def backward(self, learn): learn.loss.backward()
    def step(self, learn): learn.opt.step()
    def zero_grad(self, learn): learn.opt.zero_grad()

@pytest.mark.parametrize('make', [
    lambda m: PostTrainLearner(get_model(), img_data(), cbs=m, loss_func=nn.CrossEntropyLoss()),
    lambda m: PostMomentumLearner(get_model(), img_data(), cbs=m, loss_func=nn.CrossEntropyLoss()),
    lambda m: Learner(get_model(), img_data(), loss_func=nn.CrossEntropyLoss(), cbs=[PostTrainCB(), m, DeviceCB()]),
    lambda m: TrainLearner(get_model(), img_data(), cbs=m, loss_func=nn.CrossEntropyLoss()),
    lambda m: MomentumLearner(get_model(), img_data(), cbs=m, loss_func=nn.CrossEntropyLoss()),
], ids=['post-TrainLearner', 'post-MomentumLearner', 'post-TrainCB', 'TrainLearner', 'MomentumLearner'])
def test_post_learners_run_unchanged(make, capsys):
    # learner = TrainLearner(get_model(),dls,cbs=metrics,loss_func=loss_func); learner.fit(2)
    # learner = MomentumLearner(get_model(),dls,cbs=metrics,loss_func=loss_func); learner.fit(2)
    # cbs = [TrainCB(), metrics, DeviceCB()]; learner = Learner(get_model(), dls, loss_func=loss_func, cbs=cbs)
    learn = make(post_metrics())
    w = params(learn.model)
    silent(lambda: learn.fit(2))
    out = capsys.readouterr().out
    assert out.count("'accuracy'") == 4 and "'train': 'eval'" in out and changed(w, params(learn.model))

def test_post_single_batch_cb():
    # class SingleBatchCB(Callback):
    #     def after_batch(self, learner): print('[SingleBatchCB] Terminating . . . '); raise CancelFitException()
    class PostSingleBatchCB(Callback):
        def after_batch(self, learner): raise CancelFitException()
    for cb in (PostSingleBatchCB(), SingleBatchCB()):
        n = []
        class Count(Callback):
            def after_batch(self, learn): n.append(1)
        PostMomentumLearner(get_model(), img_data(), cbs=[Count(), cb], loss_func=nn.CrossEntropyLoss()).fit(2)
        assert len(n) == 1

def test_post_device_cb():
    # class DeviceCB(Callback): def before_fit(self, learn): learn.model.to(self.device) ...
    learn = PostMomentumLearner(get_model(), img_data(), cbs=[post_metrics(), DeviceCB()], loss_func=nn.CrossEntropyLoss())
    silent(lambda: learn.fit(1))
    assert to_cpu(next(learn.model.parameters())).device.type == 'cpu' and def_device in ('cpu', 'cuda', 'mps')

def test_post_channel_last_cb():
    # cbs = [metrics, ChannelLastCB(), DeviceCB()]
    # learner = MomentumLearner(get_model(), dls, cbs=cbs, loss_func=loss_func)
    learn = PostMomentumLearner(get_model(), img_data(), cbs=[post_metrics(), ChannelLastCB(), DeviceCB()],
                                loss_func=nn.CrossEntropyLoss())
    silent(lambda: learn.fit(1))
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)

def test_post_gradient_clipping_and_accumulation():
    # class GradientClippingCB(Callback): def after_backward(self, learner): clip_grad_norm_(...)
    # class GradientAccumulationCB(Callback): after_loss divides the loss, after_backward raises CancelBatchException, ...
    class GradientClippingCB(Callback):
        def __init__(self, max_norm=1.0, norm_type=2): self.max_norm, self.norm_type = max_norm, norm_type
        def after_backward(self, learner): torch.nn.utils.clip_grad_norm_(learner.model.parameters(), self.max_norm, self.norm_type)
    class GradientAccumulationCB(Callback):
        def __init__(self, n): self.counter, self.n = 0, n
        def after_loss(self, learner): learner.loss = learner.loss / self.n
        def after_backward(self, learner):
            self.counter += 1
            if self.counter % self.n != 0: raise CancelBatchException()
        def after_epoch(self, learner):
            if learner.model.training: learner.step(); learner.zero_grad()
    steps = []
    class CountSteps(Callback):
        def after_step(self, learn): steps.append(1)
    cbs = [post_metrics(), ChannelLastCB(), DeviceCB(), GradientClippingCB(), GradientAccumulationCB(2), CountSteps()]
    learn = PostMomentumLearner(get_model(), img_data(), cbs=cbs, loss_func=nn.CrossEntropyLoss())
    silent(lambda: learn.fit(2))
    assert len(steps) == 2*2  # 4 batches an epoch, a step every 2 (the epoch-end step is the learner's own call)

def test_post_lr_finder_cb_and_lr_find():
    # class LRFinderCB(Callback): def __init__(self, lr_mult=1.3): ...
    # learn = MomentumLearner(get_model(), dls, lr=1e-4, cbs=cbs, loss_func=loss_func); learn.fit(1)
    # learner.lr_find()
    cb = LRFinderCB(lr_mult=1.3)
    learn = PostMomentumLearner(get_model(), img_data(64), lr=1e-4, cbs=[DeviceCB(), cb], loss_func=nn.CrossEntropyLoss())
    learn.fit(1)
    assert cb.lrs[0] == 1e-4 and all(b/a == pytest.approx(1.3) for a, b in zip(cb.lrs, cb.lrs[1:]))
    learner = PostMomentumLearner(get_model(), img_data(64), F.cross_entropy, cbs=[DeviceCB()])
    res = learner.lr_find(lr_mult=1.3, plot=False)
    assert res.lrs[0] == 1e-5


# ---------------------------------------------------------------------------------------------
# Deep Learning from the Foundations, lesson 2 notes

def test_lesson2_dataset_slices():
    # train_ds,valid_ds = Dataset(x_train, y_train),Dataset(x_valid, y_valid)
    # x,y = train_ds[i*bs:i*bs+bs]
    x, y = torch.randn(10, 3), torch.arange(10)
    xb, yb = Dataset(x, y)[2:6]
    assert torch.equal(xb, x[2:6]) and torch.equal(yb, y[2:6])

def test_lesson2_dataloader_with_bs():
    # train_dl = DataLoader(train_ds, bs)
    # xb,yb = next(iter(valid_dl))
    xb, yb = next(iter(DataLoader(Dataset(torch.randn(10, 3), torch.arange(10)), 4)))
    assert len(xb) == len(yb) == 4

def test_lesson2_annealers_and_combine_scheds():
    # @annealer def sched_lin(start, end, pos): ...;  sched_cos, sched_no, sched_exp, cos_1cycle_anneal
    # sched = combine_scheds([0.3, 0.7], [sched_cos(0.3, 0.6), sched_cos(0.6, 0.2)])
    sched = combine_scheds([0.3, 0.7], [sched_cos(0.3, 0.6), sched_cos(0.6, 0.2)])
    assert sched(0) == pytest.approx(0.3) and sched(0.3) == pytest.approx(0.6) and sched(1) == pytest.approx(0.2)
    assert [f(0) for f in cos_1cycle_anneal(0.1, 1, 0.01)] == [0.1, 1] and sched_exp(1, 100)(0.5) == pytest.approx(10)

def test_lesson2_param_scheduler_partial():
    # cbfs = [Recorder, partial(AvgStatsCallback,accuracy), partial(ParamScheduler, 'lr', sched)]
    sched = combine_scheds([0.3, 0.7], [sched_cos(0.3, 0.6), sched_cos(0.6, 0.2)])
    rec = Recorder()
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB(), rec, partial(ParamScheduler, 'lr', sched)()])
    silent(lambda: learn.fit(2))
    assert rec.recs['lr'][0] == pytest.approx(0.3) and max(rec.recs['lr']) <= 0.6 + 1e-9 and len(rec.recs['loss']) == 8

def test_lesson2_recorder_plot_lr_and_plot_loss():
    # class Recorder(Callback): ... def plot_lr(self): plt.plot(self.lrs)   def plot_loss(self): plt.plot(self.losses)
    import matplotlib; matplotlib.use('Agg')
    rec = Recorder()
    Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB(), rec]).fit(1)
    assert len(rec.plot_lr()) == 1 and len(rec.plot_loss()) == 1


# ---------------------------------------------------------------------------------------------
# The Learner: what the texts assume of it

def test_fastbook_fit_with_positional_lr_is_an_error():
    # learn = get_learner(opt_func=opt_func)
    # learn.fit(3, 0.03)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    w = params(learn.model)
    with pytest.raises(TypeError, match=r'fit\(3, lr=0.03\)'): learn.fit(3, 0.03)
    with pytest.raises(TypeError, match=r'fit\(n_epochs, lr=1\)'): learn.fit(1, True, 1)
    assert not changed(w, params(learn.model))
    learn.fit(1, lr=0.03)
    assert learn.opt.param_groups[0]['lr'] == 0.03

@pytest.mark.parametrize('args', ['dls-model', 'data-model-kw'])
def test_fastai_argument_order_is_an_error(args):
    # learn = Learner(dls, xresnet34(n_out=10), metrics=accuracy)
    # learn = Learner(data, model)                                      (fastai v1)
    dls, model = cls_data(), nn.Linear(4, 2)
    call = (lambda: Learner(dls, model)) if args == 'dls-model' else (lambda: Learner(dls, model, loss_func=F.cross_entropy, lr=1e-2))
    with pytest.raises(TypeError, match=r'Learner\(model, dls, loss_func'): call()

@pytest.mark.parametrize('name,hint', [
    ('after_pred', 'after_predict'), ('before_train', 'before_epoch, with `if learn.training`'),
    ('before_validate', 'before_epoch, with `if not learn.training`'), ('after_validate', 'after_epoch, with `if not learn.training`'),
    ('after_cancel_batch', 'cleanup_batch'), ('after_cancel_fit', 'cleanup_fit'), ('begin_fit', 'before_fit'),
    ('begin_batch', 'before_batch'), ('begin_epoch', 'before_epoch'), ('begin_validate', 'not learn.training'),
    ('after_epcoh', 'after_epoch'), ('befor_batch', None), ('cleanup_bach', 'cleanup_batch'), ('after_create', 'before_fit'),
])
def test_callback_methods_named_like_missing_events_warn(name, hint):
    # fastbook: `after_pred`, `before_train`, `before_validate`, `after_cancel_batch`, ...; ModelResetter:
    #     def begin_train(self): self.model.reset()
    # lesson 2: def begin_fit(self, learn): ...   def begin_batch(self, xb, yb): ...
    cb = type('CB', (Callback,), {name: lambda self, learn: None})()
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    if name == 'befor_batch':  # no before_/after_/cleanup_/begin_ prefix: not taken for an event
        silent(lambda: learn.add_cb(cb)); return
    with pytest.warns(UserWarning, match=f'CB.{name} is never called.*{hint}'): learn.add_cb(cb)

def test_real_events_and_step_methods_do_not_warn():
    # class TrainCB(Callback): def predict(self, learn): ...   def after_batch(self, learn): ...
    cb = type('CB', (Callback,), {n: (lambda self, learn: None) for n in EVENTS})()
    silent(lambda: Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[PostTrainCB(), cb, MetricsCB(), ProgressCB(),
                                                                            SingleBatchCB(), DeviceCB()]))

def test_fastai_style_methods_without_the_learner_are_an_error():
    # class Mixup(Callback):
    #     run_valid = False
    #     def before_batch(self): ...
    class Mixup(Callback):
        def before_batch(self): pass
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    with pytest.raises(TypeError, match=r'Mixup.before_batch must take the learner.*def before_batch\(self, learn\)'): learn.add_cb(Mixup())
    assert len(learn.cbs) == 1

@pytest.mark.parametrize('attr,hint', [('run_valid', 'if not learn.training: return'), ('run_before', 'order'), ('_order', 'order')])
def test_fastai_ordering_and_phase_attributes_warn(attr, hint):
    # class Mixup(Callback): run_valid = False
    # class TerminateOnNaNCallback(Callback): run_before=Recorder
    # class ParamScheduler(Callback): _order=1                       (lesson 2)
    cb = type('CB', (Callback,), {attr: False, 'after_batch': lambda self, learn: None})()
    with pytest.warns(UserWarning, match=f'{attr}.*{hint}'):
        Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB(), cb])

def test_a_callbacks_step_method_shadowed_by_the_learner_warns():
    # class MixedTrainingCB(Callback): ... def backward(self, learn): self.scaler.scale(learn.loss).backward()
    # learner = MomentumLearner(get_model(), dls, cbs=cbs, loss_func=loss_func)
    class MixedTrainingCB(Callback):
        def backward(self, learn): learn.loss.backward()
    with pytest.warns(UserWarning, match=r'MixedTrainingCB.backward is never called.*MomentumLearner defines `backward`'):
        MomentumLearner(get_model(), img_data(), cbs=[MixedTrainingCB()], loss_func=F.cross_entropy)
    silent(lambda: Learner(get_model(), img_data(), cbs=[TrainCB(), MixedPrecisionCB()], loss_func=F.cross_entropy))

def test_post_metrics_cb_subclass_overriding_log():
    # class MetricsCB(Callback): ... def _log(self, d): print(d)
    # (miniai's ProgressCB: learn.metrics._log = self._log)
    logged = []
    class MyMetricsCB(MetricsCB):
        def _log(self, d): logged.append(d)
    Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB(), MyMetricsCB(accuracy=MulticlassAccuracy())]).fit(1)
    assert [d['train'] for d in logged] == ['train', 'eval'] and 'accuracy' in logged[0]

def test_progress_cb_replaces_metrics_log(capsys):
    # miniai: if hasattr(learn, 'metrics'): learn.metrics._log = self._log
    m, p = MetricsCB(accuracy=MulticlassAccuracy()), ProgressCB(bar=False)
    Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB(), m, p]).fit(1)
    out = capsys.readouterr()
    assert 'accuracy' in out.out + out.err and "{'accuracy'" not in out.out  # a table, not the dicts
    assert '_log' not in vars(m)  # put back after fit

def lesson_accuracy(out, yb): return (torch.argmax(out, dim=1)==yb).float().mean()

@pytest.mark.parametrize('metric', [lesson_accuracy, accuracy])
def test_lesson2_plain_function_metric(metric):
    # def accuracy(out, yb): return (torch.argmax(out, dim=1)==yb).float().mean()
    # stats = AvgStatsCallback([accuracy])      (a batch-size weighted mean: tot_mets[i] += m(run.pred, run.yb) * bn)
    dls = cls_data(n=40, bs=16)  # batches of 16, 16 and 8: the weights matter
    ours, ref = MetricsCB(metric), MetricsCB(ref=MulticlassAccuracy())
    Learner(nn.Linear(4, 2), dls, F.cross_entropy, cbs=[TrainCB(), ours, ref]).fit(1, valid=False)
    assert ours.log[-1][metric.__name__] == pytest.approx(ref.log[-1]['ref'])

def test_plain_metric_is_a_batch_size_weighted_mean():
    # tot_mets[i] += m(run.pred, run.yb) * bn ... avg_stats = [o/self.count ...]
    def first_pred(preds, targs): return preds[0, 0]  # not a per-sample mean: the weighting shows
    preds = [torch.tensor([[1.]]*16), torch.tensor([[4.]]*8)]
    m = AvgMetric(first_pred)
    for p in preds: m.update(p, torch.zeros(len(p)))
    assert m.compute().item() == pytest.approx((1*16 + 4*8) / 24)

def test_setting_learn_metrics_to_a_list_is_an_error():
    # learn.metrics=[accuracy]
    # learn.fit(1)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    with pytest.raises(TypeError, match=r'MetricsCB\(accuracy\)'): learn.metrics = [accuracy]

def test_post_single_epoch_cb():
    # cbs = [metrics, SingleEpochCB()]; learner.fit(2)
    #     {... 'epoch': 0, 'train': 'train'}  {... 'epoch': 0, 'train': 'eval'}  [SingleEpochCB] Terminating . . .
    for cbs in ([post_metrics(), SingleEpochCB()], [SingleEpochCB(), post_metrics()]):  # its order puts it after MetricsCB
        learn = PostMomentumLearner(get_model(), img_data(), cbs=cbs, loss_func=nn.CrossEntropyLoss())
        learn.fit(3)
        assert [(d['epoch'], d['train']) for d in learn.metrics.log] == [(0, 'train'), (0, 'eval')]
    learn = PostMomentumLearner(get_model(), img_data(), cbs=[post_metrics(), SingleEpochCB()], loss_func=nn.CrossEntropyLoss())
    learn.fit(3, valid=False)  # no validation: it stops after the training epoch
    assert [(d['epoch'], d['train']) for d in learn.metrics.log] == [(0, 'train')]


# ---------------------------------------------------------------------------------------------
# fastbook ch. 16: weight decay steppers and `do_wd`

@pytest.mark.parametrize('stepper', [weight_decay, l2_reg])
@pytest.mark.parametrize('foreach', [False, True])
@pytest.mark.parametrize('how', ['state', 'group', 'group-wd0'])
def test_fastbook_do_wd_false_is_not_decayed(stepper, foreach, how):
    # def weight_decay(p, lr, wd, do_wd=True, **kwargs):
    #     "Weight decay as decaying `p` with `lr*wd`"
    #     if do_wd and wd!=0: p.data.mul_(1 - lr*wd)
    a, b, c = (nn.Parameter(torch.ones(3)) for _ in range(3))
    groups = [{'params': [a, b]}, {'params': [c]}]
    if how == 'group': groups[1]['do_wd'] = False
    if how == 'group-wd0': groups[1]['wd'] = 0.
    opt = Optimizer(groups, [stepper, sgd_step], foreach=foreach, lr=0.1, wd=0.5)
    if how == 'state': opt.state[c]['do_wd'] = False
    for p in (a, b, c): p.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(a, torch.full((3,), 0.95)) and torch.equal(a, b)
    assert torch.equal(c, torch.ones(3))


# ---------------------------------------------------------------------------------------------
# Idioms that used to pass silently or fail without naming the minitrain way

def test_lesson2_sampler_with_bs_is_an_error():
    # class Sampler():
    #     def __init__(self, ds, bs, shuffle=False): ...
    ds = Dataset(torch.randn(10, 3), torch.arange(10))
    for call in (lambda: Sampler(ds, 4), lambda: Sampler(ds, 4, True)):  # bs landed in shuffle (and shuffle in generator)
        with pytest.raises(TypeError, match=r'shuffle must be True or False.*Sampler\(ds, shuffle=\.\.\.\).*BatchSampler\(sampler, bs\)'): call()
    assert [b.tolist() for b in BatchSampler(Sampler(ds, shuffle=False), 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

def test_fastbook_rnn_regularizer_sets_learn_pred():
    # class RNNRegularizer(Callback):
    #     def after_pred(self):
    #         self.raw_out,self.out = self.pred[1],self.pred[2]
    #         self.learn.pred = self.pred[0]
    class ThreeOutputs(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(4, 2)
        def forward(self, x): out = self.lin(x); return out, out * 2, out * 3
    class RNNRegularizer(Callback):
        def after_predict(self, learn):
            self.raw_out, self.out = learn.pred[1], learn.pred[2]
            learn.pred = learn.pred[0]
    learn = Learner(ThreeOutputs(), cls_data(), F.cross_entropy, cbs=[TrainCB(), RNNRegularizer(), MetricsCB(accuracy)])
    silent(lambda: learn.fit(1))
    assert learn.preds is learn.pred and learn.preds.shape[1:] == (2,) and 'accuracy' in learn.metrics.log[-1]

@pytest.mark.parametrize('name,ours', [('loss_grad', 'loss'), ('n_epoch', 'n_epochs'), ('x', r'xb\[0\]'), ('y', r'yb\[0\]')])
def test_fastbook_other_attribute_names_are_errors(name, ours):
    # * `loss_grad`: last computed loss ...   * `n_epoch`: the number of epochs in this training
    # * `x/xb`: ... x is detuplified       (fastbook ch. 16: Learner attributes available to callbacks)
    # if self.alpha: self.learn.loss_grad += self.alpha * self.rnn.out.float().pow(2).mean()
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    learn.fit(1)
    with pytest.raises(AttributeError, match=f"learn.{name} is fastai's name: minitrain's is learn.{ours}"): getattr(learn, name)
    with pytest.raises(AttributeError, match=f"minitrain's is learn.{ours}"): setattr(learn, name, 1)

@pytest.mark.parametrize('make', [lambda dls: Learner(nn.Linear(4, 2), dls, F.cross_entropy, metrics=accuracy),
                                  lambda dls: MomentumLearner(nn.Linear(4, 2), dls, F.cross_entropy, metrics=accuracy),
                                  lambda dls: TrainLearner(nn.Linear(4, 2), dls, F.cross_entropy, metrics=accuracy)])
def test_imagenette_learner_metrics_keyword_is_an_error(make):
    # learn = Learner(dls, xresnet34(n_out=10), metrics=accuracy)
    with pytest.raises(TypeError, match=r"fastai's keyword `metrics=`.*cbs=\[MetricsCB\(accuracy\)\]"): make(cls_data())

def test_v1_fit_callbacks_keyword_names_cbs():
    # cb = OneCycleScheduler(learn, lr_max=0.01)
    # learn.fit(1, callbacks=cb)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    w = params(learn.model)
    for call in (lambda: learn.fit(1, callbacks=RecorderCB()), lambda: learn.fit_one_cycle(1, callbacks=RecorderCB())):
        with pytest.raises(TypeError, match=r"fastai's keyword `callbacks=`: callbacks go in cbs="): call()
    assert not changed(w, params(learn.model)) and len(learn.cbs) == 1

def test_post_channel_last_cb_as_written_names_xb():
    # class ChannelLastCB(Callback):
    #     def before_fit(self, learn): learn.model = learn.model.to(memory_format=torch.channels_last)
    #     def before_batch(self, learn): learn.batch[0] = learn.batch[0].contiguous(memory_format=torch.channels_last)
    class PostChannelLastCB(Callback):
        def before_fit(self, learn): learn.model = learn.model.to(memory_format=torch.channels_last)
        def before_batch(self, learn): learn.batch[0] = learn.batch[0].contiguous(memory_format=torch.channels_last)
    learn = PostMomentumLearner(get_model(), img_data(), cbs=[post_metrics(), PostChannelLastCB(), DeviceCB()],
                                loss_func=nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match=r'learn.batch is a tuple.*learn.xb = \(x,\)'): learn.fit(1)
    class FixedChannelLastCB(PostChannelLastCB):  # what the message says to write
        def before_batch(self, learn): learn.xb = (learn.xb[0].contiguous(memory_format=torch.channels_last),)
    seen = []
    class Spy(Callback):
        def after_predict(self, learn): seen.append(learn.batch[0].is_contiguous(memory_format=torch.channels_last))
    learn = PostMomentumLearner(get_model(), img_data(), cbs=[FixedChannelLastCB(), Spy()], loss_func=nn.CrossEntropyLoss())
    silent(lambda: learn.fit(1))
    assert seen and all(seen) and isinstance(learn.batch, tuple) and learn.batch == tuple(learn.batch)

def test_v1_recorder_without_a_recorder_names_recorder_cb():
    # The Recorder callback is automatically added for you, and you can use it to see what happened in your training, e.g.:
    # learn.recorder.plot_lr(show_moms=True)
    learn = Learner(nn.Linear(4, 2), cls_data(), F.cross_entropy, cbs=[TrainCB()])
    learn.fit(1)
    with pytest.raises(AttributeError, match=r'learn.recorder is set by a callback.*RecorderCB\(\).*fit_one_cycle'): learn.recorder
    with pytest.raises(AttributeError, match=r'MetricsCB\(accuracy\)'): learn.metrics
    assert not hasattr(learn, 'recorder')
    learn.fit(1, cbs=[rec := RecorderCB()])
    assert learn.recorder is rec
