import math
from functools import partial
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.optimizer import SGD, Adam
from minitrain.learner import Learner, TrainCB, MetricsCB, Callback
from minitrain.schedule import (sched_lin, sched_cos, sched_no, sched_exp, combine_scheds, cos_1cycle_anneal,
    ParamSchedulerCB, BatchSchedCB, EpochSchedCB, RecorderCB, LRFinderCB, rec_lr, rec_mom, rec_loss,
    get_hyper, set_hyper, valley, one_cycle_scheds)

N, BS = 64, 16  # 4 training batches an epoch

def make_learner(opt_func=SGD, seed=0, cbs=(), lr=0.1, n=N):
    set_seed(seed)
    x = torch.randn(n, 4)
    y = x @ torch.tensor([1., -2., 3., 0.5]) + 0.1*torch.randn(n)
    dls = DataLoaders.from_dsets(Dataset(x, y[:, None]), Dataset(x[:16], y[:16, None]), bs=BS, shuffle=True)
    return Learner(nn.Linear(4, 1), dls, F.mse_loss, lr=lr, cbs=[TrainCB(), *cbs], opt_func=opt_func)

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]

@pytest.mark.parametrize('f,start,mid,end', [(sched_lin(2, 0), 2, 1, 0), (sched_cos(2, 0), 2, 1, 0),
                                              (sched_no(2, 0), 2, 2, 2), (sched_exp(1, 100), 1, 10, 100)])
def test_annealers_hit_their_end_points(f, start, mid, end):
    assert math.isclose(f(0), start) and math.isclose(f(0.5), mid) and math.isclose(f(1), end, abs_tol=1e-12)

def test_combine_scheds():
    f = combine_scheds([0.25, 0.75], [sched_lin(0, 1), sched_lin(1, 0)])
    assert [f(p) for p in (0, 0.125, 0.25, 0.625, 1)] == [0, 0.5, 1, 0.5, 0]
    g = combine_scheds([0, 1], [sched_no(5, 5), sched_lin(1, 2)])  # an empty piece is skipped
    assert g(0) == 1 and g(1) == 2

@pytest.mark.parametrize('pcts,msg', [([0.5, 0.6], 'sum to 1'), ([-0.5, 1.5], 'non-negative'), ([1.], 'one pct each')])
def test_combine_scheds_bad_pcts(pcts, msg):
    with pytest.raises(ValueError, match=msg): combine_scheds(pcts, [sched_no(1, 1)]*2)

def expected(f, n_epochs, n_iter=N//BS):
    total = n_epochs*n_iter
    return [f(i/total) for i in range(total)]

@pytest.mark.parametrize('opt_func', [SGD, partial(torch.optim.SGD, momentum=0.9), torch.optim.Adam, Adam])
def test_param_scheduler_end_points(opt_func):
    f = sched_lin(1.0, 0.0)
    rec = RecorderCB(lr=rec_lr)
    make_learner(opt_func, cbs=[ParamSchedulerCB('lr', f), rec]).fit(2)
    assert rec.recs['lr'] == expected(f, 2)
    assert rec.recs['lr'][0] == 1.0 and rec.recs['lr'][-1] == f(7/8)

@pytest.mark.parametrize('opt_func,key', [(partial(SGD, mom=0.9), 'mom'), (partial(torch.optim.SGD, momentum=0.9), 'momentum'),
                                          (torch.optim.Adam, 'betas')])
def test_schedules_momentum_under_any_name(opt_func, key):
    f = sched_cos(0.95, 0.85)
    rec = RecorderCB(mom=rec_mom)
    learn = make_learner(opt_func, cbs=[ParamSchedulerCB(lr=sched_no(0.01, 0.01), mom=f), rec])
    learn.fit(1)
    assert rec.recs['mom'] == pytest.approx(expected(f, 1))
    pg = learn.opt.param_groups[0]
    assert (pg[key][0] if key == 'betas' else pg[key]) == pytest.approx(f(3/4))

def test_unknown_hyper_fails_before_training():
    learn = make_learner(torch.optim.SGD)
    w = weights(learn)
    with pytest.raises(KeyError, match="unknown hyper 'learning_rate'.*lr"):
        learn.fit(1, cbs=[ParamSchedulerCB('learning_rate', sched_lin(1, 0))])
    assert all(torch.equal(a, b) for a, b in zip(w, weights(learn)))
    with pytest.raises(ValueError, match='nothing to schedule'): ParamSchedulerCB()
    with pytest.raises(TypeError, match='not a function of pos'): ParamSchedulerCB(lr=0.1)

def test_scheduling_across_several_fits():
    f = sched_lin(0.2, 0.0)
    learn = make_learner()
    runs = []
    for _ in range(2):
        rec = RecorderCB(lr=rec_lr)
        learn.fit(1, cbs=[ParamSchedulerCB('lr', f), rec])
        runs.append(rec.recs['lr'])
    assert runs[0] == runs[1] == expected(f, 1)
    assert not any(isinstance(cb, (ParamSchedulerCB, RecorderCB)) for cb in learn.cbs)

def test_resumed_fit_continues_the_schedule():
    f = sched_cos(0.3, 0.01)
    rec = RecorderCB(lr=rec_lr)
    make_learner(cbs=[ParamSchedulerCB('lr', f), rec]).fit(3, start_epoch=1)
    assert rec.recs['lr'] == expected(f, 3)[N//BS:]

def test_batch_sched_cb_drives_torch_schedulers():
    rec = RecorderCB(lr=rec_lr)
    sched = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=2*N//BS, cycle_momentum=False)
    make_learner(SGD, cbs=[BatchSchedCB(sched), rec]).fit(2)
    ref_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    ref = sched(ref_opt)
    lrs = []
    for _ in range(2*N//BS):
        lrs.append(ref_opt.param_groups[0]['lr']); ref_opt.step(); ref.step()
    assert rec.recs['lr'] == pytest.approx(lrs)

def test_epoch_sched_cb():
    rec = RecorderCB(lr=rec_lr)
    make_learner(torch.optim.SGD, cbs=[EpochSchedCB(partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)), rec]).fit(3)
    assert rec.recs['lr'] == pytest.approx([0.1]*4 + [0.05]*4 + [0.025]*4)

def test_fit_one_cycle_shape():
    rec = RecorderCB(lr=rec_lr, mom=rec_mom)
    make_learner(partial(SGD, mom=0.9), n=256).fit_one_cycle(2, lr_max=0.1, cbs=[rec])  # 32 batches
    lrs, moms = rec.recs['lr'], rec.recs['mom']
    assert math.isclose(lrs[0], 0.1/25) and math.isclose(moms[0], 0.95)
    peak = lrs.index(max(lrs))
    assert peak == 8 and math.isclose(lrs[peak], 0.1) and math.isclose(moms[peak], 0.85)  # pct_start 0.25 of 32
    assert lrs[-1] < 0.1/100 and moms[-1] > 0.94
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak+1:]))

@pytest.mark.parametrize('opt_func', [torch.optim.Adagrad, SGD])  # no momentum hyper; one that no stepper reads
def test_fit_one_cycle_without_momentum_warns_and_schedules_lr_only(opt_func, recwarn):
    rec = RecorderCB(lr=rec_lr)
    learn = make_learner(opt_func)
    with pytest.warns(UserWarning, match='does not use momentum.*moms=None'): learn.fit_one_cycle(1, lr_max=0.1, cbs=[rec])
    assert math.isclose(rec.recs['lr'][0], 0.1/25)
    recwarn.clear()
    learn.fit_one_cycle(1, moms=None)
    learn.fit_one_cycle(1, moms=(0, 0, 0))  # no momentum asked for: nothing to say
    assert not recwarn.list

def test_valley():
    losses = [3, 2.9, 2.5, 2.0, 1.5, 1.2, 1.1, 1.3, 5.0]
    i = valley(losses)
    assert 1 <= i <= 6
    with pytest.raises(ValueError, match='at least 2'): valley([1.0])

def test_lr_finder_stops_on_explosion():
    cb = LRFinderCB(lr_mult=2, max_mult=3)
    make_learner(n=4096).fit(5, cbs=[cb], lr=1e-4)
    assert len(cb.lrs) < 5*4096//BS  # stopped early
    assert cb.losses[-1] > 3*min(cb.losses) or math.isnan(cb.losses[-1])
    assert all(math.isclose(b/a, 2) for a, b in zip(cb.lrs, cb.lrs[1:]))
    with pytest.raises(ValueError, match='lr_mult must be > 1'): LRFinderCB(lr_mult=1)

def test_lr_find_restores_everything():
    learn = make_learner(partial(SGD, mom=0.9), n=512, cbs=[MetricsCB()])
    learn.fit(1)
    opt, w, sd = learn.opt, weights(learn), learn.opt.state_dict()
    res = learn.lr_find(plot=False)
    assert learn.opt is opt and all(torch.equal(a, b) for a, b in zip(w, weights(learn)))
    assert torch.equal(opt.state_dict()['state'][0]['grad_avg'], sd['state'][0]['grad_avg'])
    assert res.valley in res.lrs and len(res.lrs) == len(res.losses) and res.lrs[0] == 1e-5
    assert len(learn.metrics.log) == 2 and not any(isinstance(cb, LRFinderCB) for cb in learn.cbs)

def test_lr_find_then_fit_equals_fit_alone():
    a = make_learner(seed=3, n=256)
    a.fit_one_cycle(2, moms=None)
    b = make_learner(seed=3, n=256)
    b.lr_find(plot=False)
    b.fit_one_cycle(2, moms=None)
    assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))

def two_groups(opt_cls):
    "opt_func with the weight at a tenth of the lr (a 'body') and the bias at the lr (a 'head')."
    def opt_func(params, lr):
        w, b = list(params)
        return opt_cls([{'params': [w], 'lr': lr/10}, {'params': [b]}], lr=lr)
    return opt_func

def group_lrs(learn): return [pg['lr'] for pg in learn.opt.param_groups]

@pytest.mark.parametrize('opt_cls', [partial(SGD, mom=0.9), Adam, partial(torch.optim.SGD, momentum=0.9), torch.optim.AdamW])
def test_schedules_keep_each_groups_ratio(opt_cls):
    learn = make_learner(two_groups(opt_cls))
    learn.fit(1, cbs=[ParamSchedulerCB('lr', sched_lin(0.2, 0.1))])
    body, head = group_lrs(learn)
    assert math.isclose(head, sched_lin(0.2, 0.1)(3/4)) and math.isclose(body, head/10)
    learn.fit_one_cycle(1, lr_max=0.1, div_final=10)
    body, head = group_lrs(learn)
    assert math.isclose(body, head/10)

@pytest.mark.parametrize('lr_max,want', [(slice(1e-3), [1e-4, 1e-3]), (slice(1e-4, 1e-2), [1e-4, 1e-2]), ([0.02, 0.05], [0.02, 0.05])])
@pytest.mark.parametrize('opt_cls', [partial(SGD, mom=0.9), torch.optim.SGD])
def test_fit_one_cycle_lr_max_per_group(lr_max, want, opt_cls):
    learn = make_learner(two_groups(opt_cls), n=256)
    peaks = []
    class Peak(Callback):
        order = ParamSchedulerCB.order + 1
        def after_batch(self, learn): peaks.append(group_lrs(learn))
    learn.fit_one_cycle(1, lr_max=lr_max, moms=None, cbs=[Peak()])
    top = max(peaks, key=lambda p: p[1])
    assert top == pytest.approx(want) and peaks[0] == pytest.approx([w/25 for w in want])

def test_lr_range_checks_the_number_of_groups():
    learn = make_learner(two_groups(torch.optim.SGD))
    with pytest.raises(ValueError, match='3 learning rates for 2 param groups'): learn.fit_one_cycle(1, lr_max=[1e-3, 1e-2, 0.1])
    with pytest.raises(ValueError, match='lr_max must be > 0'): learn.fit_one_cycle(1, lr_max=slice(0.))

def test_scheduling_a_hyper_no_stepper_reads_is_an_error():
    learn = make_learner(SGD)  # mom=0: weight_decay and sgd_step, neither reads mom
    w = weights(learn)
    with pytest.raises(ValueError, match="no stepper of this optimizer reads `mom`.*partial\\(SGD, mom=0.9\\)"):
        learn.fit(1, cbs=[ParamSchedulerCB(mom=sched_lin(0.9, 0.8))])
    assert all(torch.equal(a, b) for a, b in zip(w, weights(learn)))
    rec = RecorderCB(mom=rec_mom)
    make_learner(partial(SGD, mom=0.9)).fit(1, cbs=[ParamSchedulerCB(mom=sched_lin(0.9, 0.8)), rec])
    assert rec.recs['mom'][0] == 0.9

def test_param_scheduler_takes_fastais_dict():
    rec = RecorderCB(lr=rec_lr)
    make_learner(cbs=[ParamSchedulerCB({'lr': sched_lin(1., 0.)}), rec]).fit(1)
    assert rec.recs['lr'] == expected(sched_lin(1., 0.), 1)

def test_recorder_plots_and_learn_recorder():
    import matplotlib; matplotlib.use('Agg')
    rec = RecorderCB()
    learn = make_learner(partial(SGD, mom=0.9))
    learn.fit_one_cycle(1, cbs=[rec])
    assert learn.recorder is rec and set(rec.recs) == {'lr', 'loss'}
    assert len(rec.plot_lr()) == 1 and len(rec.plot_loss()) == 1 and len(rec.plot_sched()) == 1
    with pytest.raises(ValueError, match=r"recorded no \['mom'\].*rec_mom"): rec.plot_lr(show_moms=True)
    from matplotlib.figure import Figure
    fig = Figure()
    axs = rec.plot(fig=fig)  # on the caller's figure: no pyplot, so a script saves it without choosing a backend
    assert len(axs) == 2 and all(ax.figure is fig for ax in axs) and tuple(fig.get_size_inches()) == (8, 2.5)

def test_suggested_lrs_repr_and_fields():
    learn = make_learner(n=1024)
    res = learn.lr_find(lr_mult=1.5, plot=False)
    assert repr(res).startswith('SuggestedLRs(valley=') and 'minimum=' in repr(res) and len(repr(res)) < 80
    v, m, s = res
    assert (v, m, s) == (res.valley, res.minimum, res.steep) and res.lr_min == m and res.lr_steep == s
    assert v in res.lrs and s in res.lrs and m*10 in res.lrs
    assert all(math.isclose(b/a, 1.5) for a, b in zip(res.lrs, res.lrs[1:]))

def test_fit_one_cycle_records_the_schedule_when_no_recorder_is_there():
    learn = make_learner(partial(SGD, mom=0.9))
    learn.fit_one_cycle(1, lr_max=0.1)
    assert set(learn.recorder.recs) == {'lr', 'mom'} and len(learn.recorder.recs['lr']) == N//BS
    assert math.isclose(learn.recorder.recs['lr'][0], 0.1/25) and learn.recorder.recs['mom'][0] == 0.95
    assert not any(isinstance(cb, RecorderCB) for cb in learn.cbs)
    rec = RecorderCB(loss=rec_loss)
    learn.fit_one_cycle(1, cbs=[rec])  # the caller's recorder is used, no second one
    assert learn.recorder is rec

# ---- optimizers built per parameter group (fastai's Imagenette tutorial) get the lr they ask for
from minitrain.optimizer import OptimWrapper, delegates, Optimizer, sgd_step
from minitrain.schedule import OneCycleScheduler, lr_find

@delegates(torch.optim.AdamW.__init__)
def pytorch_adamw(param_groups, **kwargs):  # as the text writes it
    return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))

TEXT_OPT = partial(pytorch_adamw, wd=0.01, eps=1e-3)

class GroupLRs(Callback):
    "Every param group's lr at each training batch, in `lrs` (batches x groups)."
    order = ParamSchedulerCB.order + 1
    def before_fit(self, learn): self.lrs = []
    def after_batch(self, learn):
        if learn.training: self.lrs.append(group_lrs(learn))
    def peaks(self): return [max(col) for col in zip(*self.lrs)]

@pytest.mark.parametrize('lr_max', [5e-3, 1e-3])
def test_text_pytorch_adamw_peaks_at_lr_max_on_every_group(lr_max):
    learn, cb = make_learner(TEXT_OPT, lr=1e-2), GroupLRs()
    learn.fit_one_cycle(5, lr_max, cbs=[cb])  # 20 batches: the peak falls on batch 5
    assert learn.opt.defaults['lr'] == 1e-3 and len(learn.opt.param_groups) == 2  # torch's default; a group a tensor
    assert all(math.isclose(p, lr_max, rel_tol=1e-12) for p in cb.peaks())
    assert all(row[0] == row[1] for row in cb.lrs) and math.isclose(cb.lrs[0][0], lr_max/25)
    assert all(pg['weight_decay'] == 0.01 and pg['eps'] == 1e-3 for pg in learn.opt.param_groups)
    moms = learn.recorder.recs['mom']  # "fastai will properly schedule the beta0 of AdamW"
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85)
    assert learn.opt.param_groups[1]['betas'][0] == pytest.approx(moms[-1])

def test_text_pytorch_adamw_trains_like_adamw_built_the_usual_way():
    a = make_learner(TEXT_OPT, seed=2)
    a.fit_one_cycle(2, 5e-3)
    b = make_learner(partial(torch.optim.AdamW, weight_decay=0.01, eps=1e-3), seed=2)
    b.fit_one_cycle(2, 5e-3)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(weights(a), weights(b)))
    assert a.recorder.recs['lr'] == pytest.approx(b.recorder.recs['lr'], rel=1e-12)

def test_lr_find_with_text_pytorch_adamw():
    learn = make_learner(TEXT_OPT, n=1024)
    w = weights(learn)
    res = learn.lr_find(plot=False)
    assert res.lrs[0] == 1e-5 and all(math.isclose(b/a, 1.3) for a, b in zip(res.lrs, res.lrs[1:]))
    assert len(res.lrs) > 10 and all(torch.equal(a, b) for a, b in zip(w, weights(learn)))

@pytest.mark.parametrize('wrap', [lambda opt: opt, OptimWrapper])
def test_groups_built_one_by_one_keep_their_ratio_under_one_cycle(wrap):
    def opt_func(params, lr):  # no lr in torch's defaults: each group says its own, the body a tenth of the head's
        w, b = list(params)
        return wrap(torch.optim.AdamW([{'params': [w], 'lr': lr/10}, {'params': [b], 'lr': lr}]))
    learn, cb = make_learner(opt_func), GroupLRs()
    learn.fit_one_cycle(5, 5e-3, cbs=[cb])
    body, head = cb.peaks()
    assert math.isclose(head, 5e-3) and math.isclose(body, 5e-4)
    assert all(math.isclose(b*10, h) for b, h in cb.lrs)

def test_minitrain_optimizer_groups_scale_from_the_default():
    def opt_func(params, lr):  # a head at ten times the default: the default is what the schedule stands for
        w, b = list(params)
        return Optimizer([{'params': [w]}, {'params': [b], 'lr': lr*10}], [sgd_step], lr=lr)
    learn, cb = make_learner(opt_func), GroupLRs()
    learn.fit_one_cycle(1, 0.01, moms=None, cbs=[cb])
    body, head = cb.peaks()
    assert math.isclose(body, 0.01) and math.isclose(head, 0.1)

def test_text_pytorch_adamw_saves_loads_and_resumes(tmp_path):
    from minitrain.tracking import SaveModelCB, ResumeCB
    learn = make_learner(TEXT_OPT)
    learn.fit(2)
    path = learn.save(tmp_path/'c.pth')
    w, state = weights(learn), {k: v.clone() for k, v in learn.opt.state[learn.model.weight].items()}
    learn.fit(1)
    learn.load(path)
    assert all(torch.equal(a, b) for a, b in zip(w, weights(learn)))
    assert all(torch.equal(a, b) for a, b in zip(learn.opt.state[learn.model.weight].values(), state.values()))
    assert learn.opt.param_groups[0]['weight_decay'] == 0.01
    ref = make_learner(TEXT_OPT)
    ref.fit_one_cycle(4, 5e-3)
    ckpt = tmp_path/'run.pth'
    class Crash(Callback):
        in_settings = False  # how this run ends, not what it is
        def before_epoch(self, learn):
            if learn.epoch == 2: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): make_learner(TEXT_OPT).fit_one_cycle(4, 5e-3, cbs=[SaveModelCB(path=ckpt, every_epoch=True), Crash()])
    resumed = make_learner(TEXT_OPT)  # the same data (make_learner draws it from the seed), other weights:
    with torch.no_grad():
        for p in resumed.model.parameters(): p.zero_()
    resumed.fit_one_cycle(4, 5e-3, cbs=[SaveModelCB(path=ckpt, every_epoch=True), ResumeCB(ckpt)])
    assert all(torch.equal(a, b) for a, b in zip(weights(ref), weights(resumed)))

def test_one_cycle_scheduler_is_a_stub_naming_fit_one_cycle():
    learn = make_learner()
    with pytest.raises(NotImplementedError, match=r"learn.fit_one_cycle\(n_epochs, lr_max=0.01\)"):
        OneCycleScheduler(learn, lr_max=0.01)
    with pytest.raises(NotImplementedError, match=r"fit_one_cycle.*ParamSchedulerCB\(\*\*one_cycle_scheds"):
        OneCycleScheduler(learn)
    import minitrain.all
    assert minitrain.all.OneCycleScheduler is OneCycleScheduler and minitrain.all.OptimWrapper is OptimWrapper

def test_a_torch_group_holding_fastais_name_unread_is_an_error():
    opt_func = lambda ps, lr: torch.optim.AdamW([{'params': p, 'lr': lr, 'mom': 0.9} for p in ps])  # no OptimWrapper
    learn = make_learner(opt_func)
    w = weights(learn)
    with pytest.raises(TypeError, match=r"holds fastai's `mom` and torch's `betas\[0\]`.*OptimWrapper"):
        learn.fit_one_cycle(1, 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(w, weights(learn)))
    learn = make_learner(lambda ps, lr: OptimWrapper(opt_func(ps, lr)))
    learn.fit_one_cycle(1, 1e-3)
    assert min(learn.recorder.recs['mom']) < 0.9
