"Distributed training: sharding, metric merging and the single-process fallback in this process; real training on two gloo processes (tests/dist_worker.py)."
import os, socket, subprocess, sys
from pathlib import Path
import pytest
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler, DataLoader as TorchDataLoader, TensorDataset
from torcheval.metrics import Mean, MulticlassAccuracy
from minitrain.data import Dataset, Sampler, DataLoader
from minitrain.distributed import ShardedSampler, shard_dl, init_distributed, DistributedCB, _merge_metrics
import dist_worker as W

TORCHRUN_ENV = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')

@pytest.fixture(autouse=True)
def no_torchrun_env(monkeypatch):
    "This process is a single one, whatever launched pytest."
    for k in TORCHRUN_ENV: monkeypatch.delenv(k, raising=False)

def ds(n): return Dataset(torch.arange(n), torch.arange(n))

# --- ShardedSampler, shard_dl

@pytest.mark.parametrize('n,ws', [(10, 1), (10, 2), (10, 4), (11, 3), (3, 4), (1, 2)])
@pytest.mark.parametrize('shuffle', [False, True])
def test_sharded_sampler_matches_torch(n, ws, shuffle):
    for epoch in (0, 3):
        ours, theirs = [], []
        for r in range(ws):
            s, t = ShardedSampler(ds(n), r, ws, shuffle, seed=5), DistributedSampler(ds(n), ws, r, shuffle, seed=5)
            s.set_epoch(epoch); t.set_epoch(epoch)
            ours.append(list(s)); theirs.append(list(t))
            assert len(s) == len(t) == len(ours[-1])
        assert ours == theirs

@pytest.mark.parametrize('n,ws', [(12, 4), (10, 4), (7, 2), (3, 5)])
def test_padded_shards_cover_every_item_and_repeat_the_first(n, ws):
    shards = [list(ShardedSampler(ds(n), r, ws, shuffle=True, seed=1)) for r in range(ws)]
    assert len({len(s) for s in shards}) == 1  # same length: same number of batches on every rank
    order = [shards[i % ws][i // ws] for i in range(len(shards[0])*ws)]  # the padded order, interleaved back
    assert sorted(order[:n]) == list(range(n)) and order[n:] == [order[i % n] for i in range(len(order) - n)]

def test_unpadded_shards_hold_every_item_once():
    shards = [list(ShardedSampler(ds(11), r, 3, shuffle=True, pad=False)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11)) and [len(s) for s in shards] == [4, 4, 3]

def test_set_epoch_reshuffles_the_same_on_every_rank():
    def order(epoch):
        ss = [ShardedSampler(ds(20), r, 2, shuffle=True, seed=3) for r in range(2)]
        for s in ss: s.set_epoch(epoch)
        return [list(s) for s in ss]
    assert order(0) == order(0) and order(0) != order(1)
    assert sorted(sum(order(1), [])) == list(range(20))

@pytest.mark.parametrize('kwargs,err,msg', [
    (dict(rank=2, world_size=2), ValueError, 'below world_size=2'),
    (dict(rank=0, world_size=0), ValueError, 'world_size must be at least 1'),
    (dict(rank=-1, world_size=2), ValueError, 'rank must be at least 0'),
    (dict(rank=0.5, world_size=2), TypeError, 'rank must be an int'),
    (dict(rank=0, world_size=2, seed=None), TypeError, 'seed must be an int'),
    (dict(rank=0, world_size=4, pad=False), ValueError, 'leave some of the 4 ranks none')])
def test_sharded_sampler_bad_args(kwargs, err, msg):
    with pytest.raises(err, match=msg): ShardedSampler(ds(3), **kwargs)

def test_sharded_sampler_empty_dataset():
    with pytest.raises(ValueError, match='empty'): ShardedSampler(ds(0), 0, 2)

def test_shard_dl_copies_and_keeps_bs_and_drop_last():
    dl = DataLoader(ds(50), bs=8, shuffle=True, drop_last=True)
    shards = [shard_dl(dl, r, 2, seed=9) for r in range(2)]
    assert type(dl.sampler) is Sampler and len(dl) == 6  # the original is unchanged
    assert [len(s) for s in shards] == [3, 3] and all(s.bs == 8 for s in shards)
    batches = [[y.tolist() for _, y in s] for s in shards]
    assert all(len(b) == 8 for bs in batches for b in bs)
    assert batches[0] == [b.tolist() for b in shards[0].sampler.indices().split(8)[:3]]
    assert not set(sum(batches[0], [])) & set(sum(batches[1], []))

def test_shard_dl_keeps_the_class_and_the_worker_settings():
    from minitrain.vision import SeededDataLoader
    custom = lambda b: tuple(torch.stack(o) for o in zip(*b))
    dl = SeededDataLoader(ds(20), bs=3, shuffle=True, collate_fn=custom, num_workers=2, timeout=9, prefetch_factor=4,
                          persistent_workers=True)
    s = shard_dl(dl, 1, 2, seed=3)
    assert type(s) is SeededDataLoader and isinstance(s.sampler, ShardedSampler) and s.bs == 3 and s.collate_fn is custom
    assert (s.num_workers, s.timeout, s.prefetch_factor, s.persistent_workers) == (2, 9, 4, True)

def test_shard_dl_keeps_order_when_not_shuffled():
    shard = shard_dl(DataLoader(ds(7), bs=2), 1, 2, pad=False)
    assert [y.tolist() for _, y in shard] == [[1, 3], [5]]

@pytest.mark.parametrize('dl', [TorchDataLoader(TensorDataset(torch.arange(10)), batch_size=2),
                                DataLoader(ds(10), bs=2, sampler=ShardedSampler(ds(10), 0, 2))])
def test_shard_dl_refuses_what_it_cannot_shard(dl):
    with pytest.raises(TypeError, match='sampler=ShardedSampler'): shard_dl(dl, 0, 2)

def test_shard_dl_no_batches():
    with pytest.raises(ValueError, match='fewer than bs=8'): shard_dl(DataLoader(ds(10), bs=8, drop_last=True), 0, 2)

# --- metrics

def test_merged_metrics_equal_the_metrics_over_all_data():
    torch.manual_seed(0)
    preds, targs, losses = torch.randn(30, 3), torch.randint(0, 3, (30,)), torch.rand(30)
    parts = [slice(0, 11), slice(11, 21), slice(21, 30)]
    def metrics(s): return {'acc': MulticlassAccuracy().update(preds[s], targs[s]), 'loss': Mean().update(losses[s])}
    states = [{k: m.state_dict() for k, m in metrics(s).items()} for s in parts]
    got, want = _merge_metrics(metrics(parts[0]), states), metrics(slice(None))
    assert got['acc'] == want['acc'].compute()
    assert got['loss'].item() == pytest.approx(want['loss'].compute().item(), rel=1e-6)

# --- one process: DistributedCB changes nothing

def test_init_distributed_without_environment():
    assert init_distributed() is False and not torch.distributed.is_initialized()

def test_init_distributed_partial_environment(monkeypatch):
    monkeypatch.setenv('RANK', '0'); monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(RuntimeError, match='RANK, WORLD_SIZE set but not MASTER_ADDR, MASTER_PORT'): init_distributed()

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without CUDA')
def test_init_distributed_nccl_without_cuda(monkeypatch):
    for k, v in dict(RANK='0', WORLD_SIZE='2', MASTER_ADDR='127.0.0.1', MASTER_PORT='1').items(): monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match="'nccl' needs CUDA"): init_distributed('nccl')
    assert not torch.distributed.is_initialized()

def test_distributed_cb_without_group_changes_nothing():
    def run(cbs):
        dls = W.make_dls(16)
        learn = W.make_learner(dls, cbs)
        learn.fit(2)
        return learn, dls
    (plain, _), (learn, dls) = run([]), run([DistributedCB()])
    assert all(torch.equal(p, q) for p, q in zip(plain.model.parameters(), learn.model.parameters()))
    assert plain.metrics.log == learn.metrics.log
    assert (learn.rank, learn.world_size, learn.is_main) == (0, 1, True)
    assert learn.dls is dls and not isinstance(learn.model, DDP) and 'compute' not in vars(learn.metrics)

# --- two processes, gloo, loopback

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def run_ranks(out: Path, *args, world_size=2, timeout=120) -> list[tuple[int, str, str]]:
    "Run tests/dist_worker.py as `world_size` ranks, as torchrun would; (exit code, stdout, stderr) of each, or fail if one hangs."
    env = {**os.environ, 'WORLD_SIZE': str(world_size), 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(free_port()),
           'OMP_NUM_THREADS': '1'}
    if Path('/sys/class/net/lo').exists(): env['GLOO_SOCKET_IFNAME'] = 'lo'  # loopback only
    logs = [(out/f'rank{r}.stdout', out/f'rank{r}.stderr') for r in range(world_size)]
    procs = []
    for r, (o, e) in enumerate(logs):
        with open(o, 'w') as fo, open(e, 'w') as fe:
            procs.append(subprocess.Popen([sys.executable, W.__file__, str(out), *args], stdout=fo, stderr=fe,
                                          env={**env, 'RANK': str(r), 'LOCAL_RANK': str(r)}))
    try:
        for p in procs: p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        for p in procs: p.wait()
        pytest.fail(f"the ranks did not finish in {timeout}s:\n" + '\n'.join(o.read_text() + e.read_text() for o, e in logs))
    return [(p.returncode, o.read_text(), e.read_text()) for p, (o, e) in zip(procs, logs)]

def reference():
    "One process, batches of 2*BS drawn in the order the two ranks share: what the two ranks' training must equal."
    dls = W.make_dls(2*W.BS)
    dls.train = shard_dl(dls.train, 0, 1, seed=W.SEED)
    seen = W.SeenCB(dls.train.ds)
    learn = W.make_learner(dls, [DistributedCB(), seen])  # no group: it only tells the sampler the epoch
    learn.fit(W.EPOCHS)
    log = learn.metrics.log
    learn.fit(1, train=False)
    return dict(weights=learn.model.state_dict(), log=log, valid_log=learn.metrics.log, seen=seen.seen)

def assert_logs_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g['epoch'], g['train']) == (w['epoch'], w['train'])
        assert g['loss'] == pytest.approx(w['loss'], rel=1e-5)
        assert abs(g['MulticlassAccuracy'] - w['MulticlassAccuracy']) <= 1/W.N_VALID  # a sample on the boundary may flip

def test_two_ranks_train_like_one_process(tmp_path):
    res = run_ranks(tmp_path)
    for r, (code, out, err) in enumerate(res): assert code == 0, f"rank {r} failed:\n{out}\n{err}"
    r0, r1 = (torch.load(tmp_path/f'rank{r}.pt') for r in range(2))
    # identical weights on both ranks (rank 1 started from other weights), saved without DDP's `module.` prefix
    assert r0['weights'].keys() == r1['weights'].keys() and not any(k.startswith('module.') for k in r0['weights'])
    assert all(torch.equal(r0['weights'][k], r1['weights'][k]) for k in r0['weights'])
    # every rank logs the same numbers
    assert r0['log'] == r1['log'] and r0['valid_log'] == r1['valid_log']
    assert [(d['epoch'], d['train']) for d in r0['log']] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
    # each epoch, the ranks split a new order of the samples between them, every sample once
    for e in range(W.EPOCHS):
        assert sorted(sum(r0['seen'][e] + r1['seen'][e], [])) == list(range(W.N_TRAIN))
    assert r0['seen'][0] != r0['seen'][1]
    # one process with batches twice as large, in the same order, trains to the same weights and metrics
    ref = reference()
    assert [[sorted(a + b) for a, b in zip(s0, s1)] for s0, s1 in zip(r0['seen'], r1['seen'])] == \
           [[sorted(b) for b in s] for s in ref['seen']]
    for k, w in ref['weights'].items(): torch.testing.assert_close(r0['weights'][k], w, rtol=1e-5, atol=1e-6)
    assert_logs_close(r0['log'], ref['log'])
    assert_logs_close(r0['valid_log'], ref['valid_log'])
    # only rank 0 prints the metrics; the group stays up between fits
    (_, out0, _), (_, out1, _) = res
    assert 'MulticlassAccuracy' in out0 and 'MulticlassAccuracy' not in out1
    assert r0['is_main'] and not r1['is_main']
    # DistributedCB and ProgressCB set MetricsCB's public hooks while a fit runs, never its methods, and put them back
    for r in (r0, r1): assert set(map(tuple, r['hooks'])) == {('merge', 'show')} and r['hooks_after'] == []
    for out in (out0, out1):
        assert 'process group up after fit: True' in out and 'process group up after validation: True' in out

def test_a_rank_that_raises_stops_every_rank(tmp_path):
    (code0, out0, err0), (code1, out1, err1) = run_ranks(tmp_path, '--fail-at', '2')
    assert code0 != 0 and code1 != 0
    assert 'Traceback' in err1 and 'RuntimeError: rank 1 fails on purpose at batch 2' in err1
    assert 'Traceback' in err0  # rank 0 fails too: its peer is gone
    assert 'process group up after fit: False' in out0 and 'process group up after fit: False' in out1
    assert not list(tmp_path.glob('*.pt'))

def test_every_decision_to_stop_is_agreed_by_all_ranks(tmp_path):
    "Decisions made on one rank alone (lr_find, a NaN loss, cancels, saves and get_preds on rank 0 alone) stop or skip "
    "the same phase on every rank, without waiting for the timeout."
    res = run_ranks(tmp_path, '--agree', timeout=100)
    for r, (code, out, err) in enumerate(res): assert code == 0, f"rank {r} failed:\n{out}\n{err}"
    r0, r1 = (torch.load(tmp_path/f'rank{r}.pt') for r in range(2))
    assert r0['res'] == r1['res']
    assert r0['res']['lr_find'] == len(r0['lr_losses']) and r0['lr_losses'] == r1['lr_losses']  # one curve, one stop
    # (fit_status, epoch, batch, training) where each fit ended, the same on both ranks
    assert r0['res']['nan'] == ('cancelled', 0, 3, True)  # rank 1's NaN loss at batch 3 stops both, before backward
    assert r0['res']['cancel_fit'] == ('cancelled', 0, 2, True)
    assert r0['res']['cancel_fit_after_batch'] == ('cancelled', 0, 2, True)
    assert r0['res']['cancel_epoch'] == ('done', 0, 0, False)  # training epoch cut short, validation ran
    assert r0['res']['cancel_batch'] == ('done', 1, 0, False)
    assert r0['res']['cancel_fit_in_validation'] == ('cancelled', 0, 0, False)  # no validation batch votes
    assert r0['res']['cancel_step'] == r0['res']['cancel_batch_after_backward'] == ('done', 0, 0, False)
    assert r0['res']['cancel_batch_before_forward'] == ('done', 0, 0, False)  # a BatchNorm model: DDP's forward talks
    for name, ps in r0['params'].items():  # what rank 1 skipped, rank 0 skipped too: the same weights after each fit
        assert all(torch.equal(p, q) for p, q in zip(ps, r1['params'][name])), name
    assert all(torch.equal(r0['weights'][k], r1['weights'][k]) for k in r0['weights'])
    # get_preds: the whole validation set, in order, on every rank, inside the fit (also on rank 0 alone) and after
    assert r0['preds'].shape[0] == W.N_VALID and torch.equal(r0['preds'], r1['preds'])
    assert torch.equal(r0['main_preds'], r0['preds']) and torch.equal(r0['after'], r1['after'])
    assert (tmp_path/'inside.pth').exists() and (tmp_path/'after.pth').exists()  # saves on rank 0 alone
    (_, out0, _), (_, out1, _) = res
    assert 'rank 1: TerminateOnNaNCB: the loss is nan at epoch 0, training batch 3' in out0  # rank 0 says why
    assert 'TerminateOnNaNCB' not in out1 and 'MulticlassAccuracy' not in out1  # only rank 0 prints

def check_resumed(tmp_path, res):
    for r, (code, out, err) in enumerate(res): assert code == 0, f"rank {r} failed:\n{out}\n{err}"
    r0, r1 = (torch.load(tmp_path/f'rank{r}.pt') for r in range(2))
    for r in (r0, r1):  # stopped after epoch 1 and resumed: bit for bit the run without a stop
        assert all(torch.equal(r['whole'][k], r['resumed'][k]) for k in r['whole'])
        assert r['log'] == r['resumed_log']
    assert all(torch.equal(r0['whole'][k], r1['whole'][k]) for k in r0['whole']) and r0['log'] == r1['log']
    (_, out0, _), (_, out1, _) = res
    assert 'ResumeCB: ' in out0 and 'ResumeCB' not in out1  # only rank 0 prints

def test_resume_is_exact_with_every_ranks_random_state(tmp_path):
    "Each rank draws its own dropout masks (default DistributedCB(seed=None)): a checkpoint keeps every rank's RNG state."
    check_resumed(tmp_path, run_ranks(tmp_path, '--resume', timeout=100))

def test_two_nodes_train_agree_and_resume(tmp_path):
    "Two `torchrun --nnodes=2` launchers on this machine, one process each: they train, agree on metrics, resume."
    env, port = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}, free_port()
    env['OMP_NUM_THREADS'] = '1'
    if Path('/sys/class/net/lo').exists(): env['GLOO_SOCKET_IFNAME'] = 'lo'
    logs, procs = [(tmp_path/f'node{n}.stdout', tmp_path/f'node{n}.stderr') for n in range(2)], []
    for n, (o, e) in enumerate(logs):
        with open(o, 'w') as fo, open(e, 'w') as fe:
            procs.append(subprocess.Popen(
                [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', f'--node_rank={n}', '--nproc_per_node=1',
                 '--master_addr=127.0.0.1', f'--master_port={port}', W.__file__, str(tmp_path), '--resume'],
                stdout=fo, stderr=fe, env=env))
    try:
        for p in procs: p.wait(timeout=100)
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        for p in procs: p.wait()
        pytest.fail("the nodes did not finish in 100s:\n" + '\n'.join(o.read_text() + e.read_text() for o, e in logs))
    check_resumed(tmp_path, [(p.returncode, o.read_text(), e.read_text()) for p, (o, e) in zip(procs, logs)])

LEAVE_SCRIPT = r'''
import sys
import torch.distributed as dist
from minitrain.distributed import init_distributed, _leave
order = sys.argv[1]
assert init_distributed('gloo')
rank = dist.get_rank()
if rank == 1: sys.stdin.readline()  # the test lets rank 1 leave once rank 0 is leaving
else: print('rank 0 leaving', flush=True)
_leave()  # what runs at exit
with open(order, 'a') as f: f.write(str(rank))
'''

def test_rank_0_leaves_the_group_last(tmp_path):
    "At exit rank 0, whose process hosts the store here, tears its part down after every other rank has (the SIGABRT)."
    script, order = tmp_path/'leave.py', tmp_path/'order'
    script.write_text(LEAVE_SCRIPT)
    env = {**os.environ, 'WORLD_SIZE': '2', 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(free_port()),
           'OMP_NUM_THREADS': '1'}
    if Path('/sys/class/net/lo').exists(): env['GLOO_SOCKET_IFNAME'] = 'lo'
    procs = [subprocess.Popen([sys.executable, str(script), str(order)], env={**env, 'RANK': str(r), 'LOCAL_RANK': str(r)},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    try:
        assert procs[0].stdout.readline() == 'rank 0 leaving\n'
        outs = [procs[1].communicate('go\n', timeout=60), procs[0].communicate(timeout=60)]
    finally:
        for p in procs: p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert order.read_text() == '10'
