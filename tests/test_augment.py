"Augmentation stage: batch transforms keep their contracts, leave validation alone and repeat with the seed; MixUp, CutMix, label smoothing, TTA; bad input."
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoader, DataLoaders
from minitrain.learner import Learner, TrainCB, DeviceCB, Callback, SingleBatchCB
from minitrain.augment import (BatchTransformCB, rand_flip, RandFlip, rand_crop, RandCrop, rand_resized_crop, RandResizedCrop,
                               rand_erase, RandErase, rand_copy, RandCopy, LabelSmoothingCrossEntropy, beta_sample, MixUpCB, CutMixCB)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

def images(n=16, c=2, h=12, w=10, seed=0, dtype=torch.float32, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    return (x*40 + 128).clamp(0, 255).to(torch.uint8).to(device) if dtype == torch.uint8 else x.to(dtype).to(device)

TFMS = {'flip': rand_flip, 'flip_ud': lambda x: rand_flip(x, dim=-2), 'crop': rand_crop, 'crop_fill': lambda x: rand_crop(x, fill=0),
        'resized_crop': rand_resized_crop, 'erase': rand_erase, 'copy': rand_copy}
ANY_DTYPE = {'flip', 'flip_ud', 'crop', 'crop_fill', 'copy'}  # the others need floats (noise, interpolation)
IN_PLACE = {'erase', 'copy'}  # as miniai's: they change the batch they are given and return it

@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize('name', list(TFMS))
def test_transforms_keep_dtype_device_shape_and_input(name, dtype, device):
    if dtype == torch.uint8 and name not in ANY_DTYPE: pytest.skip('needs floats')
    x = images(dtype=dtype, device=device)
    before = x.clone()
    set_seed(0)
    y = TFMS[name](x)
    assert y.dtype == x.dtype and y.device == x.device and y.shape == x.shape
    if name in IN_PLACE: assert y is x, "rand_erase and rand_copy change the batch in place and return it"
    else: assert torch.equal(x, before), "the input batch must not be changed in place"
    assert y.is_contiguous()

@pytest.mark.parametrize('name', list(TFMS))
def test_transforms_are_random_per_image_and_seeded(name):
    x = images(n=64)
    set_seed(1); a = TFMS[name](x.clone())
    set_seed(1); b = TFMS[name](x.clone())
    set_seed(2); c = TFMS[name](x.clone())
    assert torch.equal(a, b) and not torch.equal(a, c)
    same = images(n=64)[:1].expand(64, -1, -1, -1)  # one image 64 times: each copy draws its own transform
    set_seed(1); d = TFMS[name](same.clone())
    assert len(torch.unique(d.flatten(1), dim=0)) > 1

def test_modules_equal_functions():
    x = images()
    for mod, fn in [(RandFlip(0.3, -2), lambda x: rand_flip(x, 0.3, -2)), (RandCrop((8, 9), 1, 0.5), lambda x: rand_crop(x, (8, 9), 1, 0.5)),
                    (RandResizedCrop(6, (0.2, 0.5)), lambda x: rand_resized_crop(x, 6, (0.2, 0.5))),
                    (RandErase(0.3, 2), lambda x: rand_erase(x, 0.3, 2)), (RandCopy(0.3, 2), lambda x: rand_copy(x, 0.3, 2))]:
        set_seed(0); a = mod(x.clone())
        set_seed(0); b = fn(x.clone())
        assert torch.equal(a, b)

def test_flip_probabilities():
    x = images(n=8)
    assert torch.equal(rand_flip(x, p=0.), x) and torch.equal(rand_flip(x, p=1.), x.flip(-1))
    assert torch.equal(rand_flip(x, p=1, dim=-2), x.flip(-2))

def test_crop_is_a_window_of_the_padded_image():
    x = images(n=32, c=1, h=6, w=6)
    padded = F.pad(x, (2, 2, 2, 2), value=-7.)
    set_seed(0); y = rand_crop(x, size=(5, 4), padding=2, fill=-7.)
    assert y.shape == (32, 1, 5, 4)
    for i in range(len(x)):
        assert any(torch.equal(y[i], padded[i, :, t:t+5, l:l+4]) for t in range(6) for l in range(7))
    edge = F.pad(x, (2, 2, 2, 2), mode='replicate')
    set_seed(0); y = rand_crop(x, size=(5, 4), padding=2)
    for i in range(len(x)):
        assert any(torch.equal(y[i], edge[i, :, t:t+5, l:l+4]) for t in range(6) for l in range(7))

def test_resized_crop_identity_and_size():
    x = images()
    torch.testing.assert_close(rand_resized_crop(x, scale=(1, 1), ratio=(1, 1)), x)
    assert rand_resized_crop(x, size=(5, 7)).shape == (16, 2, 5, 7)
    assert rand_resized_crop(x, size=20).shape == (16, 2, 20, 20)

def test_erase_keeps_statistics_and_range():
    x = images(n=256, c=1, h=28, w=28)
    set_seed(0); y = rand_erase(x.clone(), pct=0.3, max_num=4)
    assert (y != x).float().mean() > 0.1
    assert abs(y.mean() - x.mean()) < 0.05 and abs(y.std() - x.std()) < 0.05
    assert y.min() >= x.min() and y.max() <= x.max()
    assert torch.equal(rand_erase(x.clone(), max_num=0), x)

def test_copy_uses_only_pixels_of_the_same_image():
    x = images(n=32, c=1)
    set_seed(0); y = rand_copy(x.clone(), pct=0.4, max_num=6)
    assert not torch.equal(x, y)
    assert all(torch.isin(y[i], x[i]).all() for i in range(len(x)))
    assert torch.equal(rand_copy(x.clone(), max_num=0), x)

@pytest.mark.parametrize('bad, match', [
    (lambda: rand_flip(images(), p=1.5), 'p must be a number in'), (lambda: RandFlip(p=-0.1), 'p must be a number in'),
    (lambda: RandFlip(p=True), 'p must be'), (lambda: rand_flip(images(), dim=1), 'dim must be'),
    (lambda: rand_crop(images(h=12, w=10), size=20, padding=4), 'larger than the 12×10 images padded by 4'),
    (lambda: rand_crop(images(), size=(11, 11), padding=0), 'larger than'), (lambda: RandCrop(padding=-1), 'padding'),
    (lambda: RandCrop(size=0), 'size must be'), (lambda: RandCrop(size=(3, 4, 5)), 'size must be'), (lambda: RandResizedCrop(scale=(0.5, 1.5)), 'scale'),
    (lambda: RandResizedCrop(scale=(0, 1)), 'scale'), (lambda: RandResizedCrop(ratio=(2, 1)), 'ratio'),
    (lambda: RandErase(pct=0), 'pct'), (lambda: RandErase(pct=1.2), 'pct'), (lambda: RandCopy(max_num=-1), 'max_num'),
    (lambda: rand_erase(images()[0]), 'N×C×H×W'), (lambda: rand_flip(torch.zeros(4, 28, 28)), r'x\[:, None\]'),
])
def test_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match): bad()

def test_float_only_transforms_say_so():
    for f in (rand_erase, rand_resized_crop):
        with pytest.raises(TypeError, match='floating-point'): f(images(dtype=torch.uint8))

# --- BatchTransformCB in a Learner

class Record(Callback):
    "Keep the inputs of every batch the model sees, by phase."
    order = BatchTransformCB.order + 10
    def before_fit(self, learn): self.seen = {True: [], False: []}
    def before_batch(self, learn): self.seen[learn.training].append(learn.xb[0].clone())

def classifier_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)

def small_learner(*cbs, n=64, bs=16, num_workers=0, shuffle=True):
    x, y = classifier_data(n)
    set_seed(0)
    dls = DataLoaders.from_dsets(Dataset(x, y), Dataset(x[:32], y[:32]), bs=bs, shuffle=shuffle, num_workers=num_workers)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4*4*4, 3))
    return Learner(model, dls, F.cross_entropy, lr=0.1, cbs=[TrainCB(), DeviceCB('cpu'), *cbs])

def test_batch_transform_takes_the_batch_in_both_phases_by_default():
    "miniai's convention: tfm(batch) returns the batch, in training and validation batches."
    rec = Record()
    learn = small_learner(BatchTransformCB(lambda b: (b[0] + 100., b[1])), rec, shuffle=False)
    learn.fit(1)
    x, _ = classifier_data()
    assert torch.equal(torch.cat(rec.seen[True]), x + 100.) and torch.equal(torch.cat(rec.seen[False]), x[:32] + 100.)

def test_batch_transform_of_the_inputs_in_training_only():
    rec = Record()
    learn = small_learner(BatchTransformCB(lambda x: x + 100., on_val=False, each=True), rec, shuffle=False)
    learn.fit(1)
    x, _ = classifier_data()
    assert torch.equal(torch.cat(rec.seen[True]), x + 100.)
    assert torch.equal(torch.cat(rec.seen[False]), x[:32]), "validation batches must be left alone with on_val=False"

def test_batch_transform_on_val_and_not_train():
    rec = Record()
    learn = small_learner(BatchTransformCB(lambda x: x * 0., on_train=False, on_val=True, each=True), rec, shuffle=False)
    learn.fit(1)
    x, _ = classifier_data()
    assert torch.equal(torch.cat(rec.seen[True]), x) and torch.equal(torch.cat(rec.seen[False]), x[:32] * 0.)

def test_batch_transform_runs_after_device_cb_whatever_the_list_order():
    class Where(Callback):
        order = BatchTransformCB.order - 1
        def before_batch(self, learn): self.before = learn.batch[0]
    w, rec = Where(), Record()
    learn = small_learner(w, rec)
    learn.cbs = [rec, BatchTransformCB(lambda x: x.flip(-1), each=True), w, TrainCB(), DeviceCB('cpu')]  # listed before DeviceCB
    learn.fit(1, valid=False, cbs=[SingleBatchCB()])
    assert torch.equal(rec.seen[True][0], w.before.flip(-1))
    assert BatchTransformCB.order > DeviceCB.order

def test_multiple_inputs():
    x, y = classifier_data(32)
    class Two(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(64, 3)
        def forward(self, a, b): return self.lin((a + b).flatten(1))
    rec = []
    class Rec(Callback):
        order = BatchTransformCB.order + 1
        def before_batch(self, learn): rec.append(learn.batch)
    ds = TensorDataset(x, x.clone(), y)
    dls = DataLoaders.from_dsets(ds, ds, bs=8, shuffle=False)
    learn = Learner(Two(), dls, F.cross_entropy, cbs=[TrainCB(n_inp=2), BatchTransformCB(lambda b: (b[0] + 1, b[1] * 0, *b[2:])), Rec()])
    learn.fit(1, train=True, valid=False, cbs=[SingleBatchCB()])
    a, b, t = rec[0]
    assert torch.equal(a, x[:8] + 1) and torch.equal(b, x[:8] * 0) and torch.equal(t, y[:8])

def test_same_augmented_batches_with_0_and_2_workers():
    runs = []
    for workers in (0, 2):
        rec = Record()
        tfms = nn.Sequential(RandCrop(padding=2), RandFlip(), RandErase(), RandCopy())
        learn = small_learner(BatchTransformCB(tfms, on_val=False, each=True), rec, num_workers=workers)
        set_seed(123)
        learn.fit(2)
        runs.append(rec.seen)
    for training in (True, False):
        assert len(runs[0][training]) == len(runs[1][training]) > 0
        assert all(torch.equal(a, b) for a, b in zip(runs[0][training], runs[1][training]))
    x, _ = classifier_data()
    assert not torch.equal(torch.cat(runs[0][True][:4]).sort(0).values, x.sort(0).values)  # really augmented

def first_half(x): return x[:len(x)//2]

@pytest.mark.parametrize('tfm, each, exc, match', [
    (first_half, True, ValueError, 'first_half changed the batch size from 16 to 8'),
    (lambda x: (x, x), True, TypeError, 'must return a tensor for each tensor of the batch, got a tuple'),
    (lambda x: x.tolist(), True, TypeError, 'must return a tensor'),
    (lambda b: b[0], False, TypeError, 'must return a batch of 2 elements.*each=True'),
    (lambda b: None, False, TypeError, 'returned None; it must return the batch')])
def test_transform_results_checked(tfm, each, exc, match):
    learn = small_learner(BatchTransformCB(tfm, each=each))
    with pytest.raises(exc, match=match): learn.fit(1, cbs=[SingleBatchCB()])

def test_bad_batch_transform_arguments():
    with pytest.raises(TypeError, match='tfm must be a function'): BatchTransformCB(3)
    with pytest.raises(TypeError, match='on_val must be True or False'): BatchTransformCB(rand_flip, on_val=None)
    with pytest.raises(ValueError, match='never transform'): BatchTransformCB(rand_flip, on_train=False, on_val=False)

# --- label smoothing

@pytest.mark.parametrize('eps', [0., 0.1, 0.5, 1.])
@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_label_smoothing_equals_torch(eps, reduction):
    set_seed(0)
    out, targ = torch.randn(32, 7, dtype=torch.float64), torch.randint(0, 7, (32,))
    torch.testing.assert_close(LabelSmoothingCrossEntropy(eps, reduction)(out, targ),
                               F.cross_entropy(out, targ, label_smoothing=eps, reduction=reduction))

def test_label_smoothing_eps_0_is_cross_entropy_and_gradients_match():
    set_seed(0)
    out = torch.randn(16, 5, requires_grad=True)
    targ = torch.randint(0, 5, (16,))
    torch.testing.assert_close(LabelSmoothingCrossEntropy(0.)(out, targ), F.cross_entropy(out, targ))
    g1, = torch.autograd.grad(LabelSmoothingCrossEntropy(0.2)(out, targ), out)
    g2, = torch.autograd.grad(F.cross_entropy(out, targ, label_smoothing=0.2), out)
    torch.testing.assert_close(g1, g2)

def test_label_smoothing_activation_decodes_and_bad_input():
    lf, out = LabelSmoothingCrossEntropy(), torch.randn(4, 3)
    torch.testing.assert_close(lf.activation(out), out.softmax(-1))
    assert torch.equal(lf.decodes(lf.activation(out)), out.argmax(-1))
    with pytest.raises(ValueError, match='eps'): LabelSmoothingCrossEntropy(eps=1.5)
    with pytest.raises(ValueError, match='reduction'): LabelSmoothingCrossEntropy(reduction='avg')

# --- MixUp and CutMix

def test_beta_sample_matches_beta_and_handles_small_alpha():
    set_seed(0)
    for a in (0.4, 1., 3.):
        t = beta_sample(a, 50_000)
        assert abs(t.mean() - 0.5) < 0.01 and abs(t.var() - 1/(8*a + 4)) < 0.005
        q = torch.tensor([0.1, 0.5, 0.9])
        ref = torch.distributions.Beta(torch.tensor(a), torch.tensor(a)).sample((50_000,))
        torch.testing.assert_close(t.quantile(q), ref.quantile(q), atol=0.02, rtol=0)
    t = beta_sample(1e-7, 1000)
    assert ((t == 0) | (t == 1)).all() and 0 < t.sum() < 1000
    set_seed(1); a = beta_sample(0.4, 10)
    set_seed(1); assert torch.equal(a, beta_sample(0.4, 10))

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]

class Losses(Callback):
    order = 50
    def before_fit(self, learn): self.losses = {True: [], False: []}
    def after_loss(self, learn): self.losses[learn.training].append(learn.loss.item())

@pytest.mark.parametrize('loss_func', [F.cross_entropy, nn.CrossEntropyLoss(), LabelSmoothingCrossEntropy()])
def test_mixup_with_alpha_to_0_is_no_mixup(loss_func):
    runs = []
    for cbs in ([], [MixUpCB(alpha=1e-8)]):
        rec = Losses()
        learn = small_learner(*cbs, rec, shuffle=False)
        learn.loss_func = loss_func
        learn.fit(2)
        runs.append((weights(learn), rec.losses))
    (w0, l0), (w1, l1) = runs
    for a, b in zip(w0, w1): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(l0[True]), torch.tensor(l1[True]), rtol=1e-5, atol=1e-6)
    assert l0[False] == l1[False]
    assert getattr(loss_func, 'reduction', 'mean') == 'mean', "NoneReduce must restore the loss's reduction"

def test_mixup_mixes_inputs_and_losses_as_the_tutorial_says():
    class Check(Callback):
        order = MixUpCB.order + 1
        def before_batch(self, learn):
            if learn.training: self.x_mixed = learn.batch[0].clone()
        def after_loss(self, learn):
            if learn.training: self.loss = learn.loss.item()
    x, y = classifier_data(16)
    mix, chk = MixUpCB(alpha=0.4), Check()
    learn = small_learner(mix, chk, n=16, bs=16, shuffle=False)
    set_seed(5)
    learn.fit(1, valid=False)
    set_seed(5)
    int(torch.empty((), dtype=torch.int64).random_())  # what the DataLoader draws for its workers' seed
    t = beta_sample(0.4, 16); t = torch.max(t, 1 - t)
    perm = torch.randperm(16)
    assert torch.equal(mix.t, t) and (t >= 0.5).all()
    torch.testing.assert_close(chk.x_mixed, t[:, None, None, None]*x + (1 - t[:, None, None, None])*x[perm])
    preds = learn.preds.detach()
    want = (t*F.cross_entropy(preds, y, reduction='none') + (1 - t)*F.cross_entropy(preds, y[perm], reduction='none')).mean()
    assert abs(chk.loss - want.item()) < 1e-5

@pytest.mark.parametrize('cb', [MixUpCB(), CutMixCB()])
def test_mixing_is_for_training_only(cb):
    rec = Record()
    learn = small_learner(cb, rec, shuffle=False)
    learn.fit(1)
    x, _ = classifier_data()
    assert torch.equal(torch.cat(rec.seen[False]), x[:32]) and not torch.equal(torch.cat(rec.seen[True]), x)

def test_cutmix_pastes_rectangles_and_weights_by_area():
    class Check(Callback):
        order = MixUpCB.order + 1
        def before_batch(self, learn): self.xb = learn.batch[0].clone()
    x, y = classifier_data(64)
    cut, chk = CutMixCB(), Check()
    learn = small_learner(cut, chk, n=64, bs=64, shuffle=False)
    set_seed(3)
    learn.fit(1, valid=False)
    set_seed(3)
    int(torch.empty((), dtype=torch.int64).random_())
    beta_sample(1., 64); perm = torch.randperm(64)
    own = (chk.xb == x).flatten(1).float().mean(1)
    other = (chk.xb == x[perm]).flatten(1).float().mean(1)
    assert ((chk.xb == x) | (chk.xb == x[perm])).all()
    fixed = perm == torch.arange(64)  # an image mixed with itself: every pixel is both
    torch.testing.assert_close(own[~fixed], cut.t[~fixed]); torch.testing.assert_close(other[~fixed], 1 - cut.t[~fixed])
    assert 0.2 < cut.t.mean() < 0.8 and (cut.t < 1).any() and (cut.t > 0).any()

@pytest.mark.parametrize('alpha', [0, -0.5, float('nan'), float('inf'), True, '0.4', None])
def test_bad_alpha(alpha):
    for cls in (MixUpCB, CutMixCB):
        with pytest.raises(ValueError, match='alpha must be a positive number'): cls(alpha)

def test_mixup_needs_a_loss_with_reduction_and_says_so_before_training():
    def my_loss(preds, targs): return F.cross_entropy(preds, targs)
    for cb in (MixUpCB(), CutMixCB()):
        learn = small_learner(cb)
        learn.loss_func = my_loss
        w = weights(learn)
        with pytest.raises(TypeError, match='needs one loss per item.*reduction'): learn.fit(1)
        assert all(torch.equal(a, b) for a, b in zip(w, weights(learn)))

def test_mixup_needs_one_input():
    learn = small_learner(MixUpCB())
    learn.cbs = [TrainCB(n_inp=2), MixUpCB()]
    with pytest.raises(ValueError, match='n_inp=2'): learn.fit(1)

# --- test-time augmentation

def trained_classifier():
    learn = small_learner(BatchTransformCB(RandFlip(), on_val=False, each=True))
    learn.fit(1)
    return learn

def test_tta_is_get_preds_averaged_over_the_flip():
    learn = trained_classifier()
    p0, t0 = learn.get_preds()
    p1, t1 = learn.tta()
    assert torch.equal(t0, t1)
    torch.testing.assert_close(learn.tta(tfms=[])[0], p0)
    x, y = classifier_data()
    pf, _ = learn.get_preds(dl=DataLoader(Dataset(x[:32].flip(-1), y[:32]), bs=8))
    torch.testing.assert_close(p1, (p0 + pf)/2)

def test_tta_passes_of_a_random_transform_differ_repeat_and_leave_the_rng():
    learn = trained_classifier()
    seen = []
    def tfm(x):
        out = rand_erase(x, pct=0.5)
        seen.append(out)
        return out
    state = torch.get_rng_state()
    p1, _ = learn.tta(tfms=[tfm], n=3)
    assert torch.equal(torch.get_rng_state(), state)
    n_batches = len(learn.dls.valid)
    passes = [torch.cat(seen[i*n_batches:(i+1)*n_batches]) for i in range(3)]
    assert len(seen) == 3*n_batches and not torch.equal(passes[0], passes[1]) and not torch.equal(passes[1], passes[2])
    p2, _ = learn.tta(tfms=[tfm], n=3)
    assert torch.equal(p1, p2)

def test_tta_bad_n():
    learn = trained_classifier()
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='tta: n must be an integer >= 1'): learn.tta(n=n)

# --- the command line

def test_cli_defaults_unchanged_and_options_parse():
    from minitrain.cli import _parser, _augment_cbs
    ap, _ = _parser()
    args = ap.parse_args(['train'])  # the default (issue 30's recipe): random flips only
    assert args.augment is False and args.mixup is None and args.flip is True
    [flip] = _augment_cbs(args)
    assert type(flip) is BatchTransformCB and type(flip.tfm) is RandFlip and not flip.on_val
    assert _augment_cbs(ap.parse_args(['train', '--no-flip'])) == []
    args = ap.parse_args(['train', '--augment', '--mixup'])
    cbs = _augment_cbs(args)
    assert [type(cb) for cb in cbs] == [BatchTransformCB, MixUpCB] and cbs[1].alpha == 0.4
    assert [type(m) for m in cbs[0].tfm] == [RandCrop, RandFlip, RandErase]
    assert _augment_cbs(ap.parse_args(['train', '--no-flip', '--mixup', '0.2']))[0].alpha == 0.2

def test_cli_bad_mixup_alpha(capsys):
    from minitrain.cli import main
    with pytest.raises(SystemExit) as e: main(['train', '--mixup', '0'])
    assert e.value.code == 2 and '--mixup: must be a positive number' in capsys.readouterr().err

def test_cli_trains_with_augment_and_mixup(capsys):
    from minitrain.cli import main
    from minitrain.datasets import EMBEDDED_DIR
    assert main(['train', '--data', str(EMBEDDED_DIR), '--model', 'mlp', '--epochs', '1', '--quiet', '--threads', '1',
                 '--augment', '--mixup']) == 0
    assert 'accuracy 0.' in capsys.readouterr().out

def test_mixup_needs_one_target():
    x, y = classifier_data(32)
    dls = DataLoaders.from_dsets(TensorDataset(x, y, y), TensorDataset(x, y, y), bs=8)
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), dls, lambda p, a, b, reduction='mean': F.cross_entropy(p, a, reduction=reduction),
                    cbs=[TrainCB(), MixUpCB()])
    with pytest.raises(ValueError, match='this batch has 2 targets'): learn.fit(1)
