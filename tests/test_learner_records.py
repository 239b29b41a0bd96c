"What the Learner records for later stages: validates, fit_status/fit_error, is_main, inner_model, xb/yb, probe_cbs, and the predict guard."
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from minitrain.data import Dataset, DataLoaders
from minitrain.learner import Learner, TrainLearner, Callback, TrainCB, MetricsCB, ProgressCB, CancelFitException, SingleBatchCB

def dls(n=16):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)
    return DataLoaders.from_dsets(Dataset(x, y), Dataset(x, y), bs=4)

def learner(*cbs, cls=Learner): return cls(nn.Linear(4, 3), dls(), F.cross_entropy, cbs=[*([TrainCB()] if cls is Learner else []), *cbs])

class Seen(Callback):
    def before_fit(self, learn): self.at_start = (learn.trains, learn.validates, learn.fit_status)
    def cleanup_fit(self, learn): self.at_cleanup = (learn.fit_status, learn.fit_error)

@pytest.mark.parametrize('valid', [True, False])
def test_records_phases_and_a_normal_end(valid):
    s = Seen()
    learn = learner(s)
    learn.fit(1, valid=valid)
    assert s.at_start == (True, valid, 'running') and s.at_cleanup == ('done', None) and learn.fit_status == 'done'

def test_records_a_cancelled_fit():
    s = Seen()
    learner(s, SingleBatchCB()).fit(2)
    assert s.at_cleanup == ('cancelled', None)

def test_records_the_exception_of_a_failed_fit_even_inside_an_except_block():
    class Boom(Callback):
        def after_batch(self, learn): raise KeyError('boom')
    s = Seen()
    learn = learner(s, Boom())
    try: raise ValueError('handled by the caller')
    except ValueError:
        with pytest.raises(KeyError): learn.fit(1)
    assert s.at_cleanup[0] == 'failed' and isinstance(s.at_cleanup[1], KeyError) and learn.fit_error is s.at_cleanup[1]

def test_is_main_and_inner_model_defaults():
    learn = learner()
    assert learn.is_main is True and learn.inner_model is None

def test_xb_yb_are_tuples_split_at_n_inp_and_assignable():
    learn = learner()
    x, y = torch.ones(2, 4), torch.zeros(2, dtype=torch.long)
    learn.batch = (x, y)
    assert learn.xb == (x,) and learn.yb == (y,)
    learn.xb = x*2
    assert torch.equal(learn.batch[0], x*2) and learn.batch[1] is y
    learn.yb = (y+1,)
    assert torch.equal(learn.batch[1], y+1)
    learn.n_inp = 2
    assert len(learn.xb) == 2 and learn.yb == ()
    with pytest.raises(ValueError, match='n_inp=2'): learn.xb = (x,)

def test_a_callback_replacing_xb_changes_what_the_model_sees():
    class Zero(Callback):
        def before_batch(self, learn): learn.xb = torch.zeros_like(learn.xb[0])
        def after_predict(self, learn): self.ok = torch.allclose(learn.preds, learn.model.bias.expand_as(learn.preds))
    z = Zero()
    learner(z).fit(1, valid=False, cbs=SingleBatchCB())
    assert z.ok

@pytest.mark.parametrize('cls', [Learner, TrainLearner])
def test_predict_with_an_argument_names_the_inference_verbs(cls):
    learn = learner(cls=cls)
    learn.batch = (torch.ones(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match=r'training-step verb.*predict_item\(item\).*predict_batch\(xb\)'): learn.predict(torch.ones(2, 4))
    learn.predict()
    assert learn.preds.shape == (2, 3)

def test_probe_cbs_leave_out_logging_callbacks():
    m, p, t = MetricsCB(), ProgressCB(), TrainCB()
    class Keep(Callback): pass
    class Skip(Callback): in_probes = False
    k, s = Keep(), Skip()
    learn = Learner(nn.Linear(4, 3), dls(), F.cross_entropy, cbs=[t, m, p, k, s])
    assert learn.probe_cbs == [t, k]
