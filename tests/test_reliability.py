"Reliability (issue 15): one test per reported case, then a table of bad inputs, each refused with an error that names the argument and the fix, before any weight, file or optimizer state changed."
import gzip, http.server, io, math, os, re, socket, subprocess, sys, threading, warnings
from copy import deepcopy
from functools import partial
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torcheval.metrics import MulticlassAccuracy
import minitrain.datasets as mds
from minitrain.core import atomic_write, set_seed, check_int
from minitrain.data import Dataset, DataLoader, DataLoaders, BatchSampler, Sampler
from minitrain.optimizer import SGD, Adam
from minitrain.learner import (Learner, TrainLearner, TrainCB, DeviceCB, MetricsCB, ProgressCB, Callback, EVENTS,
                               CancelFitException)
from minitrain.schedule import ParamSchedulerCB, RecorderCB, BatchSchedCB, EpochSchedCB, sched_lin, rec_lr
from minitrain.accel import MixedPrecisionCB, GradClipCB, GradAccumCB, ChannelsLastCB
from minitrain.tracking import TerminateOnNaNCB, EarlyStoppingCB, SaveModelCB, ResumeCB
from minitrain.distributed import DistributedCB, ShardedSampler
from minitrain import cli

N_CLASSES = 3

def tiny_dls(n=48, bs=8, classes=N_CLASSES, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoaders(DataLoader(Dataset(x, y), bs=bs, shuffle=True), DataLoader(Dataset(x[:16], y[:16]), bs=bs))

def tiny_learner(cbs=(), metrics=True, dls=None, **kw):
    set_seed(0)
    cbs = [TrainCB(), *([MetricsCB(accuracy=MulticlassAccuracy())] if metrics else []), *cbs]
    return Learner(nn.Linear(4, N_CLASSES), dls or tiny_dls(), F.cross_entropy, lr=0.1, cbs=cbs, **kw)

def weights(learn): return {k: v.clone() for k, v in learn.model.state_dict().items()}
def same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob('*'))}

def opt_state(learn):
    return None if learn.opt is None else deepcopy(learn.opt.state_dict())

def same_opt(a, b):
    "Optimizer states alike: equal, or (a fit made a new optimizer) still without any step."
    if a is None: return b is None or not b['state']
    return a['param_groups'] == b['param_groups'] and a['state'].keys() == b['state'].keys() and all(
        all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a['state'][k].values(), b['state'][k].values()))
        for k in a['state'])

# ---------------------------------------------------------------- case 1 (and 10: cleanups), every shipped callback

def shipped_cbs(tmp_path, mixed=False):
    "Every shipped callback that trains normally, in one learner (`mixed`: MixedPrecisionCB provides the step)."
    step = MixedPrecisionCB(torch.bfloat16) if mixed else TrainCB()
    return [step, DeviceCB('cpu'), MetricsCB(accuracy=MulticlassAccuracy()), ProgressCB(bar=True),
            RecorderCB(lr=rec_lr), ParamSchedulerCB(lr=sched_lin(0.1, 0.01)),
            BatchSchedCB(partial(torch.optim.lr_scheduler.StepLR, step_size=2)) if not mixed else
            EpochSchedCB(partial(torch.optim.lr_scheduler.StepLR, step_size=1)),
            GradClipCB(1.), GradAccumCB(2), ChannelsLastCB(), TerminateOnNaNCB(), EarlyStoppingCB(patience=3),
            SaveModelCB(path=tmp_path/'best.pth'), ResumeCB(tmp_path/'none.pth', missing_ok=True), DistributedCB()]

class Bomb(Callback):
    order = -100  # before every shipped callback: their before_ methods of this phase never ran
    def __init__(self, event, exc): self.event, self.exc = event, exc
    def __getattr__(self, name):
        if name == self.event:
            def boom(learn): raise self.exc
            return boom
        raise AttributeError(name)

@pytest.mark.parametrize('mixed', [False, True])
@pytest.mark.parametrize('event', EVENTS)
def test_an_error_in_any_event_is_the_error_fit_raises(tmp_path, event, mixed):
    "Case 1 and 10: whatever event raises first, fit raises that error (no cleanup hides it), the bars are closed and MetricsCB.show is put back."
    cbs = shipped_cbs(tmp_path, mixed)
    learn = Learner(nn.Sequential(nn.Linear(4, N_CLASSES)), tiny_dls(n=16), F.cross_entropy, lr=0.1, cbs=cbs)
    exc = RuntimeError(f'boom in {event}')
    with pytest.raises(RuntimeError) as ei: learn.fit(2, cbs=Bomb(event, exc))
    assert ei.value is exc
    pcb, mcb = next(c for c in cbs if isinstance(c, ProgressCB)), next(c for c in cbs if isinstance(c, MetricsCB))
    assert pcb.pbar is None and '_log' not in vars(mcb)

@pytest.mark.parametrize('event', ['before_fit', 'before_epoch', 'before_batch'])
def test_cancel_before_progress_cb_ran_is_clean(event):
    learn = tiny_learner([ProgressCB(bar=True)])
    class Stop(Callback):
        order = -100
    setattr(Stop, event, lambda self, learn: (_ for _ in ()).throw(CancelFitException()))
    learn.fit(1, cbs=Stop())
    assert learn.fit_status == 'cancelled'

@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_device_cb_cuda_on_a_cpu_machine_shows_the_cuda_error():
    learn = tiny_learner([DeviceCB('cuda'), ProgressCB(bar=True)])
    with pytest.raises((AssertionError, RuntimeError)) as ei: learn.fit(1)
    assert 'CUDA' in str(ei.value) or 'cuda' in str(ei.value)

def test_a_failing_cleanup_does_not_stop_the_others():
    "Case 10: an exception in cleanup_epoch / cleanup_fit still lets ProgressCB close its bar and put MetricsCB.show back."
    for event in ('cleanup_epoch', 'cleanup_fit'):
        learn = tiny_learner([pcb := ProgressCB(bar=True)])
        with pytest.raises(RuntimeError, match='late'): learn.fit(1, cbs=Bomb(event, RuntimeError('late')))
        assert pcb.pbar is None and '_log' not in vars(learn.metrics)

# ---------------------------------------------------------------- case 2: distributed save waits for rank 0 and shares its outcome

DIST_SCRIPT = r'''
import sys, torch, torch.distributed as dist
from torch import nn
from minitrain.learner import Learner
import minitrain.tracking
rank, init, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group('gloo', init_method=init, rank=rank, world_size=2)
learn = Learner(nn.Linear(2, 1))
learn.is_main = rank == 0
try: learn.save(path)
except Exception as e: print(f'rank {rank}: {type(e).__name__}: {e}')
else: print(f'rank {rank}: saved, file there: {__import__("os").path.exists(path)}')
dist.destroy_process_group()
'''

def run_two_ranks(tmp_path, path):
    script = tmp_path/'ranks.py'
    script.write_text(DIST_SCRIPT)
    init = f'file://{tmp_path}/pg'
    import minitrain
    env = {**os.environ, 'PYTHONPATH': str(Path(minitrain.__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, str(script), str(r), init, str(path)], stdout=subprocess.PIPE, text=True, env=env)
             for r in range(2)]
    return [p.communicate(timeout=120)[0] for p in procs]

def test_distributed_save_every_rank_sees_rank_0s_file(tmp_path):
    out = run_two_ranks(tmp_path, tmp_path/'ckpt.pth')
    assert 'rank 1: saved, file there: True' in out[1] and 'rank 0: saved' in out[0]

def test_distributed_save_failure_on_rank_0_reaches_every_rank(tmp_path):
    (tmp_path/'blocker').write_text('a file where a folder should be')
    out = run_two_ranks(tmp_path, tmp_path/'blocker'/'ckpt.pth')
    assert 'rank 0: FileExistsError' in out[0] or 'rank 0: NotADirectoryError' in out[0]
    assert 'rank 1: RuntimeError: the main process failed writing' in out[1]

def test_distributed_timeout_is_visible_and_hinted():
    import minitrain.distributed as D
    from datetime import timedelta
    assert isinstance(D.DIST_TIMEOUT, timedelta)
    learn = tiny_learner()
    learn.fit_status, learn.fit_error = 'failed', RuntimeError('[gloo] Timed out waiting 600000ms for recv operation')
    cb = DistributedCB()
    cb.active = True  # as if the group had been up; no group here, so leaving it does nothing
    cb.cleanup_fit(learn)
    assert any('DIST_TIMEOUT' in n for n in learn.fit_error.__notes__)

# ---------------------------------------------------------------- case 3: ResumeCB compares the run's settings

def crash_run(tmp_path, lr=0.1, bs=8):
    class Crash(Callback):
        def before_epoch(self, learn):
            if learn.epoch == 1: raise KeyboardInterrupt
    learn = tiny_learner(dls=tiny_dls(bs=bs))
    with pytest.raises(KeyboardInterrupt):
        learn.fit_one_cycle(3, lr_max=lr, cbs=[SaveModelCB(path=tmp_path/'run.pth', every_epoch=True), Crash()])

@pytest.mark.parametrize('change,named', [(dict(lr=1.0), 'schedule of lr'), (dict(bs=16), 'train bs')])
def test_resume_refuses_other_settings(tmp_path, change, named):
    crash_run(tmp_path)
    kw = dict(lr=0.1, bs=8) | change
    learn = tiny_learner(dls=tiny_dls(bs=kw['bs']))
    w = weights(learn)
    with pytest.raises(ValueError, match=rf"(?s)settings differ.*\n.*{named}.*strict=False"):
        learn.fit_one_cycle(3, lr_max=kw['lr'], cbs=[SaveModelCB(path=tmp_path/'run.pth', every_epoch=True), ResumeCB(tmp_path/'run.pth')])
    assert same(weights(learn), w)
    with pytest.warns(UserWarning, match=named):
        learn.fit_one_cycle(3, lr_max=kw['lr'], cbs=[SaveModelCB(path=tmp_path/'run.pth', every_epoch=True), ResumeCB(tmp_path/'run.pth', strict=False)])

def test_resume_with_the_same_settings_resumes(tmp_path):
    crash_run(tmp_path)
    learn = tiny_learner()
    learn.fit_one_cycle(3, lr_max=0.1, cbs=[SaveModelCB(path=tmp_path/'run.pth', every_epoch=True), ResumeCB(tmp_path/'run.pth')])
    assert [d['epoch'] for d in learn.metrics.log][-1] == 2

# ---------------------------------------------------------------- case 4: load checks everything first

@pytest.fixture(scope='module')
def good_ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp('ckpt')
    learn = tiny_learner()
    learn.fit(1)
    return torch.load(learn.save(folder/'good.pth'), weights_only=True)

def damaged(ckpt, change):
    ckpt = deepcopy(ckpt)
    change(ckpt)
    return ckpt

@pytest.mark.parametrize('change,msg', [
    (lambda c: c['grads'].update({'weight': torch.zeros(7)}), "gradient for 'weight'"),
    (lambda c: c['grads'].update({'nope': torch.zeros(1)}), "gradient for 'nope'"),
    (lambda c: c.pop('rng'), 'has no rng'),
    (lambda c: c['rng'].update({'torch': torch.zeros(3, dtype=torch.uint8)}), 'RNG states'),
])
def test_load_changes_nothing_when_a_part_is_bad(tmp_path, good_ckpt, change, msg):
    torch.save(damaged(good_ckpt, change), tmp_path/'bad.pth')
    learn = tiny_learner()
    learn.fit(1)
    w, o, g = weights(learn), opt_state(learn), torch.get_rng_state()
    with pytest.raises(ValueError, match=re.escape(msg) + '.*model_only=True'): learn.load(tmp_path/'bad.pth')
    assert same(weights(learn), w) and same_opt(o, opt_state(learn)) and torch.equal(torch.get_rng_state(), g)

# ---------------------------------------------------------------- case 5: temporary files

def test_save_ignores_a_planted_link_at_the_old_temporary_name(tmp_path):
    victim = tmp_path/'victim.txt'
    victim.write_text('precious')
    (tmp_path/f'.ckpt.pth.{os.getpid()}.tmp').symlink_to(victim)
    tiny_learner().save(tmp_path/'ckpt.pth')
    assert victim.read_text() == 'precious'

def test_the_temporary_file_of_a_killed_save_is_removed(tmp_path):
    dead = subprocess.Popen(['true']); dead.wait()
    stale = tmp_path/f'.ckpt.pth.{dead.pid}.x1y2z3.tmp'
    stale.write_bytes(b'0'*1000)
    with pytest.warns(UserWarning, match='temporary file of a write killed'): tiny_learner().save(tmp_path/'ckpt.pth')
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']

def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(ZeroDivisionError): atomic_write(tmp_path/'f.bin', lambda f: 1/0)
    assert not list(tmp_path.iterdir())

# ---------------------------------------------------------------- case 6: data content, verified cache

def fashion_folder(folder: Path, size=28, label=None, n=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, (xf, yf) in {'train': ('x_train', 'y_train'), 'valid': ('x_valid', 'y_valid')}.items():
        mds.write_idx(rng.integers(0, 255, (n, size, size), dtype=np.uint8), folder/mds.FASHION_FILES[xf])
        y = rng.integers(0, 10, n).astype(np.uint8)
        if label is not None: y[3] = label
        mds.write_idx(y, folder/mds.FASHION_FILES[yf])
    return folder

@pytest.mark.parametrize('kw,msg', [(dict(size=32), '32×32, Fashion-MNIST.s are 28×28'), (dict(label=200), 'labels range from 0 to 200')])
def test_data_of_another_shape_or_labels_is_refused(tmp_path, kw, msg):
    folder = fashion_folder(tmp_path/'d', **kw)
    with pytest.raises(mds.IDXError, match=msg): mds.load_fashion_mnist(path=folder)

def test_cli_data_of_another_size_is_a_usage_error(tmp_path, capsys):
    folder = fashion_folder(tmp_path/'d', size=32)
    with pytest.raises(SystemExit) as e: cli.main(['train', '--data', str(folder), '--epochs', '1', '--quiet', '--device', 'cpu'])
    assert e.value.code == 2 and '28×28' in capsys.readouterr().err

def test_cache_verified_once_and_changes_caught(tmp_path, monkeypatch):
    folder = fashion_folder(tmp_path/'cache'/'minitrain'/'fashion-mnist')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.delenv(mds.FASHION_ENV, raising=False)
    monkeypatch.setattr(mds, 'FASHION_SHA256', {f: mds._sha256_of_content(folder/f) for f in mds.FASHION_FILES.values()})
    calls = []
    real = mds._sha256_of_content
    monkeypatch.setattr(mds, '_sha256_of_content', lambda p: calls.append(p) or real(p))
    assert mds.load_fashion_mnist(source='cache').source.startswith('cache')
    assert len(calls) == 4
    mds.load_fashion_mnist(source='cache')
    assert len(calls) == 4  # remembered
    y = mds.read_idx(folder/mds.FASHION_FILES['y_train']).copy()
    y[:] = 3  # every training label set to 3 in the cache
    mds.write_idx(y, folder/mds.FASHION_FILES['y_train'])
    with pytest.raises(mds.ChecksumError, match='changed or is damaged.*download again'): mds.load_fashion_mnist(source='cache')

# ---------------------------------------------------------------- cases 7 and 8: the first batch is a contract check

def test_metric_with_the_wrong_num_classes_fails_before_any_step():
    learn = tiny_learner(metrics=False, cbs=[MetricsCB(accuracy=MulticlassAccuracy(num_classes=5))])
    w = weights(learn)
    with pytest.raises(ValueError, match="metric 'accuracy' counts num_classes=5.*predicts 3 classes.*num_classes=3"): learn.fit(1)
    assert same(weights(learn), w)

def test_mse_loss_broadcast_warns():
    x, y = torch.randn(32, 4), torch.randn(32)
    learn = TrainLearner(nn.Linear(4, 1), DataLoaders(DataLoader(Dataset(x, y), bs=8), DataLoader(Dataset(x, y), bs=8)), F.mse_loss)
    with pytest.warns(UserWarning, match=r'shape \(8, 1\) and targets of shape \(8,\) broadcast to \(8, 8\)'): learn.fit(1)

def test_empty_torch_dataloader_is_an_error():
    from torch.utils.data import DataLoader as TorchDL, TensorDataset
    empty = TorchDL(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    learn = tiny_learner(dls=DataLoaders(empty, empty))
    with pytest.raises(ValueError, match=r'learn.dls.train is empty \(0 batches\).*train=False'): learn.fit(1)

@pytest.mark.parametrize('loss_func,msg', [(partial(F.cross_entropy, reduction='none'), 'not one number.*reduction'),
                                          (lambda p, t: F.cross_entropy(p, t)*float('nan'), 'first batch is nan before any step')])
def test_first_loss_must_be_a_finite_scalar(loss_func, msg):
    learn = tiny_learner()
    learn.loss_func = loss_func
    w = weights(learn)
    with pytest.raises(ValueError, match=msg): learn.fit(1)
    assert same(weights(learn), w)

# ---------------------------------------------------------------- case 9: CLI values and downloads

@pytest.mark.parametrize('args,opt', [(['--lr', 'inf'], '--lr'), (['--wd', 'inf'], '--wd'), (['--lr', '1e308'], '--lr'),
                                      (['--seed', '-1'], '--seed'), (['--seed', '4294967296'], '--seed'), (['--lr', 'nan'], '--lr')])
def test_cli_values_are_usage_errors(args, opt, capsys):
    with pytest.raises(SystemExit) as e: cli.main(['train', *args])
    assert e.value.code == 2 and opt in capsys.readouterr().err

def test_cli_empty_data_folder_is_a_usage_error(tmp_path, capsys):
    (tmp_path/'empty').mkdir()
    with pytest.raises(SystemExit) as e: cli.main(['train', '--data', str(tmp_path/'empty')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'lacks' in err and 'four Fashion-MNIST .gz files' in err

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/missing/'): self.send_error(404, 'Not Found'); return
        body = gzip.compress(np.random.default_rng(0).bytes(5000))[:1000]  # cut short
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass

@pytest.fixture
def server():
    srv = http.server.HTTPServer(('127.0.0.1', 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}/'
    srv.shutdown(); srv.server_close()

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

@pytest.mark.parametrize('where,msg', [('missing', 'server answered 404'), ('truncated', 'cut short'), ('refused', 'cannot connect')])
def test_download_errors_are_clear(tmp_path, server, where, msg):
    url = {'missing': server + 'missing/', 'truncated': server, 'refused': f'http://127.0.0.1:{free_port()}/'}[where]
    with pytest.raises(mds.DownloadError, match=msg + '.*another source'): mds.download_fashion_mnist(tmp_path/'dl', base_url=url)
    assert not list((tmp_path/'dl').iterdir())

# ---------------------------------------------------------------- case 10: leftovers

class Stuck:
    "A dataset whose items never come (in a worker)."
    def __len__(self): return 8
    def __getitem__(self, i):
        threading.Event().wait()

def test_dataloader_timeout_for_a_stuck_worker():
    dl = DataLoader(Stuck(), bs=4, num_workers=1, timeout=0.5)
    with pytest.raises(TimeoutError, match='sent no batch in 0.5s.*num_workers=0'): next(iter(dl))

def test_fit_takes_numpy_ints():
    learn = tiny_learner()
    learn.fit(np.int64(1))
    assert learn.fit_status == 'done'

def test_save_model_cb_checks_its_path_before_training(tmp_path):
    (tmp_path/'file').write_text('x')
    learn = tiny_learner()
    w = weights(learn)
    with pytest.raises(OSError, match='cannot write checkpoints.*writable folder'): learn.fit(1, cbs=SaveModelCB(path=tmp_path/'file'/'m.pth'))
    with pytest.raises(IsADirectoryError, match='is a folder'): learn.fit(1, cbs=SaveModelCB(path=tmp_path))
    assert same(weights(learn), w)

# ================================================================ the table: bad inputs, refused before anything changed

def _dl(**kw): return DataLoader(Dataset(torch.zeros(8, 4), torch.zeros(8)), **kw)

# (id, action(env), exception type, pattern that names the argument, pattern that says the fix)
CASES = []
def case(id, action, exc, name, fix): CASES.append(pytest.param(action, exc, name, fix, id=id))

BAD_INTS = [('bool', True, 'an int'), ('float', 2.5, 'an int'), ('str', '3', 'an int'), ('none', None, 'an int')]
for nm, make in [('bs', lambda v: _dl(bs=v)), ('num_workers', lambda v: _dl(bs=2, num_workers=v)),
                 ('prefetch_factor', lambda v: _dl(bs=2, prefetch_factor=v)),
                 ('BatchSampler.bs', lambda v: BatchSampler(Sampler(Dataset(torch.zeros(4), torch.zeros(4))), v)),
                 ('patience', lambda v: EarlyStoppingCB(patience=v)), ('GradAccumCB.n', lambda v: GradAccumCB(v)),
                 ('world_size', lambda v: ShardedSampler(Dataset(torch.zeros(4), torch.zeros(4)), 0, v)),
                 ('rank', lambda v: ShardedSampler(Dataset(torch.zeros(4), torch.zeros(4)), v, 2)),
                 ('seed', lambda v: set_seed(v))]:
    arg = nm.split('.')[-1]
    for vid, v, fix in BAD_INTS + [('negative', -1, 'at least')]:
        if nm == 'bs' and v is None: continue  # DataLoader(bs=None) means "the batch sampler decides": a different error
        case(f'{nm}-{vid}', lambda env, make=make, v=v: make(v), (TypeError, ValueError), rf'\b{arg}\b', fix)
case('seed-too-large', lambda env: set_seed(2**32), ValueError, r'\bseed\b', 'below')
for vid, v in [('nan', float('nan')), ('inf', float('inf')), ('negative', -1.), ('str', '1'), ('bool', True)]:
    case(f'timeout-{vid}', lambda env, v=v: _dl(bs=2, timeout=v), ValueError, r'\btimeout\b', 'seconds >= 0')
for vid, v in [('zero', 0.), ('negative', -1.), ('nan', float('nan')), ('str', 'x')]:
    case(f'GradClipCB-max_norm-{vid}', lambda env, v=v: GradClipCB(v), (TypeError, ValueError), 'max_norm', 'positive number')

# fit arguments: refused before the optimizer exists or a weight moves
for nm, kw in [('n_epochs', lambda v: dict(n_epochs=v)), ('start_epoch', lambda v: dict(n_epochs=3, start_epoch=v))]:
    for vid, v, fix in BAD_INTS + [('negative', -1, 'at least')]:
        case(f'fit-{nm}-{vid}', lambda env, kw=kw, v=v: env.learn.fit(**kw(v)), (TypeError, ValueError), rf'\b{nm}\b', fix)
case('fit-start-past-end', lambda env: env.learn.fit(2, start_epoch=3), ValueError, 'start_epoch', 'fit runs epochs')
def _empty_torch_dl():
    from torch.utils.data import DataLoader as TorchDL, TensorDataset
    return TorchDL(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=2)
case('fit-empty-train', lambda env: env.fit_on(train=_empty_torch_dl()),
     ValueError, r'dls\.train', 'train=False')
case('fit-no-valid', lambda env: env.learn.__setattr__('dls', type('D', (), {'train': env.learn.dls.train})()) or env.learn.fit(1),
     AttributeError, r'\.valid', 'valid=False')
case('fit-class-not-instance', lambda env: env.learn.fit(1, cbs=ProgressCB), TypeError, 'ProgressCB', r'ProgressCB\(\)')
case('fit-not-a-callback', lambda env: env.learn.fit(1, cbs=object()), TypeError, 'not a callback', 'subclass')
case('fit-two-steps', lambda env: env.learn.fit(1, cbs=TrainCB()), ValueError, 'provide `predict`', 'keep only one')
case('fit-loss-none-reduction', lambda env: env.with_loss(partial(F.cross_entropy, reduction='none')), ValueError, 'loss', 'reduction')
case('fit-loss-nan', lambda env: env.with_loss(lambda p, t: F.cross_entropy(p, t)*float('nan')), ValueError, 'loss', 'fix the data or the model')
case('fit-loss-inf', lambda env: env.with_loss(lambda p, t: F.cross_entropy(p, t)*float('inf')), ValueError, 'loss', 'fix the data or the model')
case('fit-loss-not-tensor', lambda env: env.with_loss(lambda p, t: 1.0), ValueError, 'loss', 'return a tensor')
for n in (2, 4, 5, 10):
    case(f'metric-num_classes-{n}', lambda env, n=n: env.with_metric(MulticlassAccuracy(num_classes=n)), ValueError, 'num_classes', f'num_classes={N_CLASSES}')
# trackers: monitor and path, before training
for cls in (EarlyStoppingCB, SaveModelCB):
    for mon in ('valid_loss', 'valid_accuracy'):
        case(f'{cls.__name__}-{mon}-valid-False', lambda env, cls=cls, mon=mon: env.learn.fit(1, valid=False, cbs=env.tracker(cls, mon)),
             ValueError, mon, 'monitor a train_ metric')
    for mon in ('train_loss', 'train_accuracy'):
        case(f'{cls.__name__}-{mon}-train-False', lambda env, cls=cls, mon=mon: env.learn.fit(1, train=False, cbs=env.tracker(cls, mon)),
             ValueError, mon, 'monitor a valid_ metric')
    for mon in ('valid_acc', 'loss', 'accuracy'):
        case(f'{cls.__name__}-unknown-{mon}', lambda env, cls=cls, mon=mon: env.learn.fit(1, cbs=env.tracker(cls, mon)),
             ValueError, 'unknown monitor', 'one of')
    case(f'{cls.__name__}-no-metrics', lambda env, cls=cls: env.no_metrics().fit(1, cbs=env.tracker(cls, 'valid_loss')), ValueError, 'MetricsCB', r'add MetricsCB\(\)')
case('SaveModelCB-path-under-a-file', lambda env: env.learn.fit(1, cbs=SaveModelCB(path=env.blocker/'m.pth')), OSError, 'cannot write checkpoints', 'writable folder')
case('SaveModelCB-path-is-a-folder', lambda env: env.learn.fit(1, cbs=SaveModelCB(path=env.tmp)), IsADirectoryError, 'is a folder', 'give the file')
for d in (-1., float('nan')):
    case(f'min_delta-{d}', lambda env, d=d: EarlyStoppingCB(min_delta=d), ValueError, 'min_delta', '>= 0')

# load: every damaged part refused before anything changed
def _bad_ckpt(change):
    def act(env):
        torch.save(damaged(env.ckpt, change), env.tmp/'bad.pth')
        env.learn.load(env.tmp/'bad.pth')
    return act
for key in ('epoch', 'n_epochs', 'model', 'grads', 'opt', 'cbs', 'log', 'rng'):
    if key == 'model': continue  # without weights it is not a checkpoint at all (next cases)
    case(f'load-without-{key}', _bad_ckpt(lambda c, key=key: c.pop(key)), (ValueError, KeyError), key, 'model_only=True')
for pid, change, name in [
        ('grad-shape', lambda c: c['grads'].update(weight=torch.zeros(2, 2)), 'weight'),
        ('grad-unknown', lambda c: c['grads'].update(other=torch.zeros(1)), 'other'),
        ('grad-not-tensor', lambda c: c['grads'].update(weight=[1., 2.]), 'weight'),
        ('grads-not-dict', lambda c: c.update(grads=[1]), 'gradients'),
        ('epoch-str', lambda c: c.update(epoch='1'), 'epoch'),
        ('epoch-bool', lambda c: c.update(epoch=True), 'epoch'),
        ('rng-python', lambda c: c['rng'].update(python=(1, 2)), 'RNG'),
        ('rng-numpy-key', lambda c: c['rng']['numpy'].update(key=torch.zeros(3, dtype=torch.int64)), 'RNG'),
        ('rng-numpy-missing', lambda c: c['rng'].pop('numpy'), 'RNG'),
        ('rng-torch', lambda c: c['rng'].update(torch=torch.zeros(5, dtype=torch.uint8)), 'RNG'),
        ('rng-torch-missing', lambda c: c['rng'].pop('torch'), 'RNG'),
        ('rng-samplers', lambda c: c['rng'].update(samplers={'train': torch.zeros(2, dtype=torch.uint8)}), 'RNG'),
        ('rng-cuda', lambda c: c['rng'].update(cuda='x'), 'RNG'),
        ('rng-not-dict', lambda c: c.update(rng=[1]), 'RNG')]:
    case(f'load-{pid}', _bad_ckpt(change), ValueError, name, 'model_only=True')
for pid, change, name, fix in [
        ('model-shape', lambda c: c['model'].update(weight=torch.zeros(5, 4)), 'weight', 'does not fit this model'),
        ('model-missing', lambda c: c['model'].pop('bias'), 'bias', 'missing from the checkpoint'),
        ('model-extra', lambda c: c['model'].update(extra=torch.zeros(1)), 'extra', 'not in the model'),
        ('opt-groups', lambda c: c['opt']['param_groups'][0].update(params=[0]), 'param groups', 'another model'),
        ('opt-hypers', lambda c: c['opt']['param_groups'][0].update(newhyper=1.), 'hypers', 'same opt_func'),
        ('format', lambda c: c.update(format='other 2'), 'minitrain checkpoint', 'learn.save')]:
    case(f'load-{pid}', _bad_ckpt(change), ValueError, name, fix)
case('load-missing-file', lambda env: env.learn.load(env.tmp/'nothing.pth'), FileNotFoundError, 'nothing.pth', 'no checkpoint')
case('load-truncated', lambda env: (env.tmp/'t.pth').write_bytes((env.tmp/'good.pth').read_bytes()[:100]) and env.learn.load(env.tmp/'t.pth'),
     ValueError, 't.pth', 'truncated')
case('load-state-dict', lambda env: torch.save(env.learn.model.state_dict(), env.tmp/'sd.pth') or env.learn.load(env.tmp/'sd.pth'),
     ValueError, 'sd.pth', 'load_state_dict')

# resume with other settings
for pid, change, name in [('lr', dict(lr=0.5), 'schedule of lr'), ('bs', dict(bs=4), 'train bs'), ('items', dict(n=40), 'train items'),
                          ('opt', dict(opt_func=Adam), 'hypers'), ('epochs', dict(n_epochs=4), 'epochs')]:
    case(f'resume-other-{pid}', lambda env, change=change: env.resume(**change), ValueError, name, 'same')
case('resume-missing', lambda env: env.learn.fit(1, cbs=ResumeCB(env.tmp/'nope.pth')), FileNotFoundError, 'nope.pth', 'no checkpoint')

# CLI: values the parser takes and would end as tracebacks
CLI = [('--lr', 'inf'), ('--lr', '-inf'), ('--lr', 'nan'), ('--lr', '1e308'), ('--lr', '11'), ('--lr', '0'), ('--lr', '-1'), ('--lr', 'x'),
       ('--wd', 'inf'), ('--wd', 'nan'), ('--wd', '-1'), ('--wd', '1e308'), ('--seed', '-1'), ('--seed', '4294967296'),
       ('--seed', '1.5'), ('--seed', 'x'), ('--epochs', '0'), ('--epochs', '-2'), ('--bs', '0'), ('--bs', '2.5'),
       ('--workers', '-1'), ('--threads', '0'), ('--device', 'nonsense'), ('--device', 'tpu'), ('--model', 'vit')]
for opt, v in CLI:
    case(f'cli{opt}={v}', lambda env, opt=opt, v=v: env.cli([opt, v]), SystemExit, re.escape(opt), r'must be|choose|use|minitrain trains|expected one argument')
case('cli--data-empty', lambda env: env.cli(['--data', str(env.empty)]), SystemExit, '--data', 'four Fashion-MNIST')
case('cli--data-missing', lambda env: env.cli(['--data', str(env.tmp/'nowhere')]), SystemExit, '--data', 'no such folder')
case('cli--data-32px', lambda env: env.cli(['--data', str(fashion_folder(env.tmp/'d32', size=32))]), SystemExit, '--data|images', '28×28')
case('cli--data-labels', lambda env: env.cli(['--data', str(fashion_folder(env.tmp/'dl', label=200))]), SystemExit, 'labels', 'damaged or of another dataset')
case('cli--out-under-a-file', lambda env: env.cli(['--out', str(env.blocker/'out')]), SystemExit, '--out', 'cannot write')

class Env:
    "A learner after one fit (with optimizer state), a checkpoint of it, and a folder; what a case may change is snapshotted."
    def __init__(self, tmp: Path, capsys):
        self.tmp, self.capsys = tmp, capsys
        self.learn = tiny_learner()
        self.learn.fit(1)
        self.ckpt = torch.load(self.learn.save(tmp/'good.pth'), weights_only=True)
        (tmp/'blocker').write_text('a file where a folder should be')
        self.blocker, self.empty = tmp/'blocker', tmp/'empty'
        self.empty.mkdir()
        self.err = ''
    def fit_on(self, train):
        self.learn.dls = DataLoaders(train, self.learn.dls.valid)
        self.learn.fit(1)
    def with_loss(self, f):
        self.learn.loss_func = f
        self.learn.fit(1)
    def with_metric(self, m):
        self.learn.remove_cb(self.learn.metrics)
        self.learn.fit(1, cbs=MetricsCB(accuracy=m))
    def no_metrics(self):
        self.learn.remove_cb(self.learn.metrics)
        return self.learn
    def tracker(self, cls, mon):
        return cls(mon, path=self.tmp/'t.pth') if cls is SaveModelCB else cls(mon)
    def resume(self, lr=0.1, bs=8, n=48, opt_func=SGD, n_epochs=3):
        run = tiny_learner(dls=tiny_dls(n=48, bs=8))
        run.fit_one_cycle(3, lr_max=0.1, cbs=SaveModelCB(path=self.tmp/'run.pth', every_epoch=True))
        self.snap()  # the case is the resume
        self.learn.dls, self.learn.opt_func = tiny_dls(n=n, bs=bs), opt_func
        self.learn.fit_one_cycle(n_epochs, lr_max=lr, cbs=[SaveModelCB(path=self.tmp/'run.pth', every_epoch=True), ResumeCB(self.tmp/'run.pth')])
    def cli(self, args):
        try: cli.main(['train', '--quiet', '--epochs', '1', '--device', 'cpu', *args])
        finally: self.err = self.capsys.readouterr().err
    def snap(self):
        self.before = weights(self.learn), self.learn.opt, opt_state(self.learn), files(self.tmp)
    def check_unchanged(self):
        w, opt, o, f = self.before
        assert same(weights(self.learn), w), 'weights changed'
        # the same optimizer with the same state, or (fit made a new one) a new one that never stepped
        assert same_opt(o if self.learn.opt is opt else None, opt_state(self.learn)), 'optimizer state changed'
        new = files(self.tmp)
        assert {k: v for k, v in new.items() if k in f} == f, 'a file changed'
        assert not [k for k in new if k not in f and not k.startswith(('d32', 'dl', 'bad.pth', 't.pth', 'sd.pth'))], f'new files: {new.keys() - f.keys()}'

def test_the_table_is_large_enough(): assert len(CASES) >= 150

@pytest.mark.parametrize('action,exc,name,fix', CASES)
def test_bad_input_is_refused_before_anything_changes(tmp_path, capsys, action, exc, name, fix):
    env = Env(tmp_path, capsys)
    env.snap()
    with pytest.raises(exc) as ei: action(env)
    msg = env.err if ei.type is SystemExit else str(ei.value)
    if ei.type is SystemExit: assert ei.value.code == 2, 'a usage error exits with status 2'
    assert re.search(name, msg), f'the message does not name {name!r}: {msg}'
    assert re.search(fix, msg), f'the message does not say the fix ({fix!r}): {msg}'
    env.check_unchanged()
