"The hooks stage: Hook/Hooks/HooksCallback never leak, ActivationStats' numbers, memory and copies, summary."
import random
from unittest import mock
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from minitrain.learner import Learner, Callback, TrainCB, DeviceCB, MetricsCB, ProgressCB, CancelFitException
from minitrain.schedule import lr_find
from minitrain.hooks import *

class DLs:
    def __init__(self, train, valid): self.train, self.valid = train, valid

def batches(n, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(bs, 1, 8, 8, generator=g), torch.randint(0, 3, (bs,), generator=g)) for _ in range(n)]

def cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

def learner(model=None, n_train=4, n_valid=2, cbs=()):
    return Learner(model or cnn(), DLs(batches(n_train), batches(n_valid, seed=1)), F.cross_entropy, lr=0.1,
                   cbs=[TrainCB(), *cbs])

def n_hooks(model): return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

class Boom(Callback):
    def __init__(self, event, exc): self.event, self.exc = event, exc
    def __getattr__(self, name):
        if name == self.event:
            def f(learn): raise self.exc
            return f
        raise AttributeError(name)

# ---- Hook, Hooks -----------------------------------------------------------------------------------------

def test_hook_and_hooks_remove_on_exit_and_on_error():
    m = cnn()
    with Hook(m[0], lambda h, *a: None): assert n_hooks(m) == 1
    assert n_hooks(m) == 0
    with pytest.raises(ZeroDivisionError):
        with Hooks(list(m), lambda h, *a: None) as hs:
            assert len(hs) == len(m) and n_hooks(m) == len(m)
            1/0
    assert n_hooks(m) == 0

def test_hooks_delitem_removes():
    m = cnn()
    hs = Hooks(list(m), lambda h, *a: None)
    del hs[0]; del hs[:2]
    assert n_hooks(m) == len(m) - 3
    hs.remove()
    assert n_hooks(m) == 0

# ---- HooksCallback never leaks ---------------------------------------------------------------------------

@pytest.mark.parametrize('how', ['normal', 'cancelled', 'raising', 'raising_before_fit'])
def test_no_hooks_left_after_fit(how):
    hc = HooksCallback(lambda h, *a: None, nn.Conv2d)
    cbs = {'normal': [], 'cancelled': [Boom('after_batch', CancelFitException())],
           'raising': [Boom('after_batch', ValueError('x'))], 'raising_before_fit': [Boom('before_fit', ValueError('x'))]}[how]
    learn = learner(cbs=[hc, *cbs])
    if how.startswith('raising'):
        with pytest.raises(ValueError): learn.fit(1)
    else: learn.fit(1)
    assert n_hooks(learn.model) == 0

def test_no_hooks_left_after_lr_find_and_summary():
    astats = ActivationStats(nn.Conv2d)
    learn = learner(n_train=30, cbs=[astats])
    learn.lr_find(plot=False, max_epochs=1)
    assert n_hooks(learn.model) == 0
    learn.summary()
    assert n_hooks(learn.model) == 0

def test_hooks_training_only_by_default():
    hc = HooksCallback(lambda h, *a: h.__dict__.setdefault('n', []).append(1), nn.Linear)
    learner(n_train=3, n_valid=2, cbs=[hc]).fit(1)
    assert len(list(hc)[0].n) == 3
    hc = HooksCallback(lambda h, *a: h.__dict__.setdefault('n', []).append(1), nn.Linear, on_train=False, on_valid=True)
    learner(n_train=3, n_valid=2, cbs=[hc]).fit(1)
    assert len(list(hc)[0].n) == 2

def test_filter_matching_nothing_fails_before_training():
    seen = []
    class Seen(Callback):
        def before_batch(self, learn): seen.append(1)
    learn = learner(cbs=[ActivationStats(nn.LSTM), Seen()])
    with pytest.raises(ValueError, match='picks none.*Conv2d'): learn.fit(1)
    assert not seen and n_hooks(learn.model) == 0

def test_bad_filter_type():
    with pytest.raises(TypeError, match='mod_filter'): ActivationStats('Conv2d')

def test_mods_and_names():
    m = cnn()
    hc = HooksCallback(lambda h, *a: None, mods=[m[2], m[7]])
    learner(m, cbs=[hc]).fit(1)
    assert [h.name for h in hc] == ['2', '7']

# ---- ActivationStats -----------------------------------------------------------------------------------

def reference_stats(model, layer, dl):
    "Mean, std and |x| histogram of `layer`'s output for each batch, computed directly (in training mode, same weights)."
    outs = []
    with Hook(layer, lambda h, m, i, o: outs.append(o.detach().clone())): 
        with torch.no_grad():
            for xb, _ in dl: model(xb)
    return [(o.mean(), o.std(), o.abs().histc(40, 0, 10)) for o in outs]

def test_activation_stats_values():
    model = cnn()
    astats = ActivationStats(nn.Conv2d)
    learn = learner(model, n_train=5, cbs=[astats])
    learn.fit(1, lr=0.)  # lr 0: the weights do not move, so a second pass sees the same activations
    model.train()
    ref = reference_stats(model, model[0], learn.dls.train)
    h = list(astats)[0]
    assert torch.allclose(h.stats.means, torch.stack([r[0] for r in ref]), atol=1e-6)
    assert torch.allclose(h.stats.stds, torch.stack([r[1] for r in ref]), atol=1e-5)
    assert torch.equal(h.stats.hists, torch.stack([r[2] for r in ref]))
    assert torch.allclose(get_min(h), h.stats.hists[:, 0]/h.stats.hists.sum(1))
    assert get_hist(h).shape == (40, 5)

def test_no_per_batch_copies():
    "One copy to the CPU per epoch, no .item()/.tolist(): counted by wrapping the Tensor methods."
    astats = ActivationStats(nn.Conv2d)
    learn = learner(n_train=12, cbs=[astats])
    calls = {'cpu': 0, 'item': 0, 'tolist': 0, 'numpy': 0}
    def counting(name):
        orig = getattr(torch.Tensor, name)
        def f(self, *a, **k):
            calls[name] += 1
            return orig(self, *a, **k)
        return f
    with mock.patch.multiple(torch.Tensor, **{k: counting(k) for k in calls}): learn.fit(2, valid=False)
    assert calls == {'cpu': 2, 'item': 0, 'tolist': 0, 'numpy': 0}
    assert len(list(astats)[0].stats.means) == 24

def test_bounded_memory_and_flush_every():
    astats = ActivationStats(nn.Conv2d, max_points=8, flush_every=5)
    pending = []
    class Watch(Callback):
        order = 200
        def after_batch(self, learn): pending.append(len(list(astats)[0].pending))
    learn = learner(n_train=40, cbs=[astats, Watch()])
    learn.fit(1, valid=False, lr=0.)
    h = list(astats)[0]
    assert len(h.stats.means) <= 8 and h.counts.sum() == 40 and max(pending) < 5
    # merged points are the average of the batches they stand for, weighted by how many
    ref = reference_stats(learn.model.train(), learn.model[0], learn.dls.train)
    w = h.counts[:, None]
    assert torch.allclose((h.stats.means*h.counts).sum()/40, torch.stack([r[0] for r in ref]).mean(), atol=1e-5)
    assert torch.allclose((h.stats.hists*w).sum(0), torch.stack([r[2] for r in ref]).sum(0), rtol=1e-5)
    # the merged std is the std of all the activations of those batches (same count per batch)
    outs = []
    with Hook(learn.model[0], lambda hk, m, i, o: outs.append(o.detach())), torch.no_grad():
        for xb, _ in learn.dls.train: learn.model(xb)
    starts = (h.counts.cumsum(0) - h.counts).long().tolist()
    pooled = torch.stack([torch.cat([o.flatten() for o in outs[s:s+int(c)]]).std() for s, c in zip(starts, h.counts)])
    assert torch.allclose(h.stats.stds, pooled, rtol=2e-3)

def test_activation_stats_stats_restart_each_fit():
    astats = ActivationStats(nn.Conv2d)
    learn = learner(n_train=3, cbs=[astats])
    learn.fit(1); learn.fit(1)
    assert len(list(astats)[0].stats.means) == 3

def test_plots_run():
    import matplotlib; matplotlib.use('Agg')
    astats = ActivationStats(nn.ReLU)
    learner(cbs=[astats]).fit(1)
    assert len(astats.plot_stats()) == 2 and len(astats.color_dim()) >= 2 and len(astats.dead_chart()) >= 2

def test_with_mixed_precision_and_channels_last():
    from minitrain.accel import MixedPrecisionCB, ChannelsLastCB
    model = cnn()
    astats = ActivationStats(nn.Conv2d)
    learn = Learner(model, DLs(batches(3), batches(1)), F.cross_entropy, lr=0.1,
                    cbs=[MixedPrecisionCB(torch.bfloat16), ChannelsLastCB(), astats])
    learn.fit(1)
    h = list(astats)[0]
    assert len(h.stats.means) == 3 and torch.isfinite(h.stats.stds).all() and (h.stats.stds > 0).all()
    assert n_hooks(model) == 0

def test_with_ddp(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        model = cnn()
        astats = ActivationStats(nn.Conv2d)
        learn = learner(DDP(model), n_train=3, cbs=[astats])
        learn.fit(1)
        assert [h.name for h in astats] == ['0', '2'] and len(list(astats)[0].stats.means) == 3
        assert n_hooks(learn.model) == 0
        s = learn.summary()
        assert s[0].name == '0' and n_hooks(learn.model) == 0
    finally: dist.destroy_process_group()

# ---- summary ----------------------------------------------------------------------------------------------

def test_summary_table():
    learn = learner()
    s = learn.summary()
    assert [r.kind for r in s] == ['Conv2d', 'ReLU', 'Conv2d', 'BatchNorm2d', 'ReLU', 'AdaptiveAvgPool2d', 'Flatten', 'Linear']
    assert s[0].input_shape == (8, 1, 8, 8) and s[0].output_shape == (8, 4, 4, 4) and s[-1].output_shape == (8, 3)
    assert s.params == sum(p.numel() for p in learn.model.parameters())
    assert s[0].macs == 4*4*4 * 9 and s[2].macs == 8*2*2 * 4*9 and s[-1].macs == 3*8
    text = str(s)
    assert 'BatchNorm2d' in text and f'{s.params:,} parameters' in text and '| Conv2d |' in s._repr_markdown_()

def test_summary_leaves_everything_as_it_was():
    metrics, progress = MetricsCB(), ProgressCB(bar=False)
    astats = ActivationStats(nn.Conv2d)
    learn = learner(cbs=[metrics, progress, astats])
    learn.fit(1)
    stats, log = list(astats)[0].stats, list(metrics.log)
    cbs, opt = list(learn.cbs), learn.opt
    learn.model.eval()
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    random.seed(3); np.random.seed(3); torch.manual_seed(3)
    learn.summary()
    after = random.random(), np.random.rand(), torch.rand(1)
    random.seed(3); np.random.seed(3); torch.manual_seed(3)
    assert after == (random.random(), np.random.rand(), torch.rand(1))
    assert all(a is b for a, b in zip(learn.cbs, cbs)) and len(learn.cbs) == len(cbs) and learn.opt is opt
    assert not learn.model.training and metrics.log == log and list(astats)[0].stats is stats
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())
    learn.model.train()
    learn.summary()
    assert learn.model.training

def test_summary_model_does_not_fit_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(20, 3))
    learn = learner(model)
    with pytest.raises(RuntimeError, match=r"layer '3'.*Linear\(in_features=20.*\(8, 1, 8, 8\)|inputs of shape \(8, 1, 8, 8\)\) in layer '3'"):
        learn.summary()
    assert n_hooks(model) == 0 and len(learn.cbs) == 1

def test_summary_needs_valid():
    learn = Learner(cnn(), DLs(batches(2), []), F.cross_entropy, cbs=[TrainCB()])
    # fit refuses an empty loader before any work (issue 15); summary's own check covers loaders without a length
    with pytest.raises((RuntimeError, ValueError), match=r'no batch|dls\.valid is empty'): learn.summary()

def test_no_hooks_left_after_get_preds():
    import minitrain.inference  # adds Learner.get_preds
    astats = ActivationStats(nn.Conv2d)
    learn = learner(cbs=[astats])
    learn.fit(1)
    stats = list(astats)[0].stats
    preds, targs = learn.get_preds()[:2]
    assert preds.shape == (16, 3) and n_hooks(learn.model) == 0 and list(astats)[0].stats is stats

def test_probes_leave_activation_stats_alone():
    "lr_find and summary are probes: ActivationStats (in_probes False) keeps the stats of the last fit."
    astats = ActivationStats(nn.Conv2d)
    learn = learner(n_train=30, cbs=[astats])
    learn.fit(1)
    stats = list(astats)[0].stats
    learn.lr_find(plot=False, max_epochs=1); learn.summary()
    assert list(astats)[0].stats is stats and len(stats.means) == 30

def test_histogram_of_a_sample_for_large_layers():
    "Big activations: the histogram counts a strided sample, scaled up; close to the full histogram."
    torch.manual_seed(0)
    x = torch.randn(64, 16, 28, 28) * 2
    h = type('H', (), {})()
    append_stats_pending(h, nn.Identity(), (x,), x)
    row = h.pending[0]
    full = x.abs().histc(40, 0, 10)
    assert torch.allclose(row[0], x.mean(), atol=1e-5) and torch.allclose(row[1], x.std(), rtol=1e-4)
    assert abs(row[2:].sum() - full.sum()) / full.sum() < 0.01
    assert ((row[2:] - full).abs().sum() / full.sum()) < 0.03
