"Issue 28, item 4: values that used to be accepted (and trained wrongly, or failed part way) are refused up front."
import operator
import pytest, torch
from torch import nn
from minitrain.data import BatchSampler, DataLoader, Dataset, Sampler
from minitrain.optimizer import Adam, RMSProp, SGD


def ds(n=10): return Dataset(torch.arange(n).float()[:, None], torch.zeros(n))


@pytest.mark.parametrize('drop_last', ['False', 'True', 0, 1, None])
def test_drop_last_must_be_a_bool(drop_last):
    with pytest.raises(TypeError, match='drop_last must be True or False'): DataLoader(ds(), bs=3, drop_last=drop_last)
    with pytest.raises(TypeError, match='drop_last must be True or False'): BatchSampler(Sampler(ds()), 3, drop_last)


@pytest.mark.parametrize('sampler', [[0.0, 1.5, 2.0], [0.0, 1.0], [True, False]])
def test_float_sampler_indices_are_refused(sampler):
    with pytest.raises(TypeError, match='integer indices'): list(DataLoader(ds(), bs=2, sampler=sampler))


def test_int_sampler_indices_still_work():
    import numpy as np
    dl = DataLoader(ds(), bs=2, sampler=[3, np.int64(1), torch.tensor(2)])
    assert [b[0].flatten().tolist() for b in dl] == [[3., 1.], [2.]]


def params(): return [nn.Parameter(torch.ones(3))]


@pytest.mark.parametrize('opt', [SGD, Adam, RMSProp])
def test_lr_true_is_refused_by_the_optimizers(opt):
    with pytest.raises(ValueError, match='not a bool'): opt(params(), lr=True)


@pytest.mark.parametrize('opt', [Adam, RMSProp])
def test_eps_zero_is_refused(opt):
    with pytest.raises(ValueError, match=r'eps=0 .*\(0, inf\)'): opt(params(), lr=1e-3, eps=0)
    opt(params(), lr=1e-3, eps=1e-12)  # small is fine


def _dls():
    from minitrain.data import DataLoaders
    x, y = torch.randn(20, 3), torch.randn(20, 1)
    return DataLoaders(DataLoader(Dataset(x, y), bs=5), DataLoader(Dataset(x, y), bs=5))


@pytest.mark.parametrize('where', ['Learner', 'fit'])
@pytest.mark.parametrize('opt_func', [None, torch.optim.SGD, torch.optim.AdamW])
def test_lr_true_is_refused_before_any_step(where, opt_func):
    import torch.nn.functional as F
    from minitrain.learner import Learner, TrainCB
    kw = {} if opt_func is None else dict(opt_func=opt_func)
    learn = Learner(nn.Linear(3, 1), _dls(), F.mse_loss, cbs=[TrainCB()], **kw, **({'lr': True} if where == 'Learner' else {}))
    w0 = learn.model.weight.detach().clone()
    with pytest.raises(ValueError, match='lr=True .*not a bool'): learn.fit(1, **({'lr': True} if where == 'fit' else {}))
    assert torch.equal(learn.model.weight, w0)


def _fit_learner(**kw):
    import torch.nn.functional as F
    from minitrain.learner import Learner, TrainCB
    learn = Learner(nn.Linear(3, 1), _dls(), F.mse_loss, cbs=[TrainCB()], **kw)
    return learn, learn.model.weight.detach().clone()


@pytest.mark.parametrize('kw', [dict(moms=(0.95, 1.05, 0.95)), dict(moms=(0.8, 0.9, 1.2))])
def test_fit_one_cycle_moms_above_one_part_way_is_refused_before_any_step(kw):
    import minitrain.schedule  # noqa: F401  (fit_one_cycle)
    learn, w0 = _fit_learner(opt_func=Adam)
    with pytest.raises(ValueError, match=r'`mom` schedule gives .*\(epoch \d+, batch \d+\)'): learn.fit_one_cycle(2, 0.01, **kw)
    assert torch.equal(learn.model.weight, w0)


def test_lr_schedule_crossing_zero_is_refused_before_any_step():
    from minitrain.schedule import ParamSchedulerCB, sched_lin
    learn, w0 = _fit_learner()
    with pytest.raises(ValueError, match=r'`lr` schedule gives -.*epoch 1, batch 1\) .*lr must be'):
        learn.fit(2, cbs=[ParamSchedulerCB(lr=sched_lin(0.1, -0.1))])
    assert torch.equal(learn.model.weight, w0)
    learn.fit(2, cbs=[ParamSchedulerCB(lr=sched_lin(0.1, 0.))])  # down to 0 is fine


@pytest.mark.parametrize('kw', [dict(div=0), dict(div=-25.), dict(div_final=0), dict(div=None), dict(div=True)])
def test_fit_one_cycle_div_must_be_positive(kw):
    import minitrain.schedule  # noqa: F401
    learn, w0 = _fit_learner()
    with pytest.raises(ValueError, match='must be a number > 0'): learn.fit_one_cycle(1, 0.01, **kw)
    assert torch.equal(learn.model.weight, w0)


@pytest.mark.parametrize('comp', ['lt', 'gt', 'less', 1])
def test_tracker_comp_must_be_a_function(comp):
    from minitrain.tracking import EarlyStoppingCB, SaveModelCB
    with pytest.raises(TypeError, match='comp must be a function'): EarlyStoppingCB(comp=comp)
    with pytest.raises(TypeError, match='comp must be a function'): SaveModelCB(comp=comp)
    EarlyStoppingCB(comp=operator.lt); SaveModelCB(comp=operator.gt)


@pytest.mark.parametrize('path', [None, '', 3])
def test_save_model_path_must_name_a_file(path):
    from minitrain.tracking import SaveModelCB
    with pytest.raises(TypeError, match='path must be the file to write'): SaveModelCB(path=path)


def test_get_image_files_takes_one_extension_as_a_str(tmp_path):
    from minitrain.vision import get_image_files
    (tmp_path/'a').mkdir()
    for f in ('x.PNG', 'y.jpg', 'z.txt'): (tmp_path/'a'/f).write_bytes(b'')
    assert [f.name for f in get_image_files(tmp_path, extensions='.png')] == ['x.PNG']
    assert [f.name for f in get_image_files(tmp_path, extensions=['.png', '.JPG'])] == ['x.PNG', 'y.jpg']
    for bad in ('png', ['.png', 'jpg'], [None]):
        with pytest.raises(ValueError, match='suffixes with their dot'): get_image_files(tmp_path, extensions=bad)
