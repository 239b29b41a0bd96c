"""minitrain.data: edge cases, bad input, the fast path against item-by-item fetching, determinism,
worker processes, and interop with torch.utils.data."""
import gc, multiprocessing, os, random, signal
from collections import namedtuple
import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset, default_collate
from minitrain.core import set_seed
from minitrain.data import BatchSampler, DataLoader, DataLoaders, Dataset, Sampler, batch_tensors, collate

@pytest.fixture(autouse=True)
def time_limit():
    "Fail a test that runs over 60 s rather than hang the suite (worker tests wait on other processes)."
    def on_alarm(signum, frame): raise TimeoutError("test ran over 60 s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)

@pytest.fixture
def no_leftover_workers():
    "Check that a test leaves no child process behind."
    assert multiprocessing.active_children() == []
    yield
    assert multiprocessing.active_children() == []

def make_xy(n=50):
    "Inputs whose first value identifies the item, and labels 0..n-1."
    return torch.arange(n*6, dtype=torch.float32).reshape(n, 2, 3), torch.arange(n)

class PerItem(Dataset):
    "A Dataset with its own __getitem__, so it is fetched item by item."
    def __getitem__(self, i): return super().__getitem__(i)

def labels(dl) -> list:
    "The labels of one epoch of `dl`, in order."
    return torch.cat([yb for _, yb in dl]).tolist()

def assert_same_batches(a, b):
    "The two lists of (x, y) batches are equal, tensor for tensor."
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

# ---------------------------------------------------------------- Dataset
def test_dataset_indexing():
    x, y = make_xy(10)
    ds = Dataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    assert torch.equal(xi, x[3]) and yi == 3
    assert torch.equal(ds[2:5][1], y[2:5])
    assert ds[[4, 1]][1].tolist() == [4, 1]
    assert ds[torch.tensor([7, 0])][1].tolist() == [7, 0]

def test_dataset_lengths_must_match():
    x, y = make_xy(10)
    with pytest.raises(ValueError, match="x has 10 items but y has 9"): Dataset(x, y[:9])

def test_dataset_needs_sized_inputs():
    with pytest.raises(TypeError, match="x must support len"): Dataset(5, [1])

# ---------------------------------------------------------------- Sampler and BatchSampler
def test_sampler_in_order():
    s = Sampler(range(7))
    assert list(s) == list(range(7)) and len(s) == 7
    assert all(type(i) is int for i in s)

def test_sampler_shuffles_each_epoch():
    s = Sampler(range(100), shuffle=True)
    a, b = list(s), list(s)
    assert sorted(a) == sorted(b) == list(range(100)) and a != b

def test_sampler_draws_from_torch_global_rng():
    set_seed(5); got = list(Sampler(range(20), shuffle=True))
    set_seed(5); want = torch.randperm(20).tolist()
    assert got == want

def test_sampler_generator_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = list(Sampler(range(30), shuffle=True, generator=torch.Generator().manual_seed(1)))
    b = list(Sampler(range(30), shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert a == b and a != list(range(30))
    assert torch.equal(torch.get_rng_state(), state)

@pytest.mark.parametrize('n,bs,drop_last', [(10, 3, False), (10, 3, True), (9, 3, False), (9, 3, True), (2, 5, False), (1, 1, True)])
def test_batch_sampler_sizes(n, bs, drop_last):
    bsamp = BatchSampler(Sampler(range(n)), bs, drop_last)
    batches = [b.tolist() for b in bsamp]
    assert len(batches) == len(bsamp)
    assert all(len(b) == bs for b in batches[:-1]) and 0 < len(batches[-1]) <= bs
    if drop_last: assert len(batches[-1]) == bs and sum(batches, []) == list(range(n - n % bs))
    else: assert sum(batches, []) == list(range(n))

@pytest.mark.parametrize('sampler', [list(range(10)), torch.utils.data.SequentialSampler(range(10))])
def test_batch_sampler_takes_any_iterable_of_indices(sampler):
    got = [b.tolist() for b in BatchSampler(sampler, 4)]
    assert got == [b.tolist() for b in BatchSampler(Sampler(range(10)), 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

@pytest.mark.parametrize('bs,err', [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError), ('4', TypeError)])
def test_batch_sampler_bad_bs(bs, err):
    with pytest.raises(err, match="bs must"): BatchSampler(Sampler(range(5)), bs)

# ---------------------------------------------------------------- collate
def test_collate_tensors_and_numbers():
    xb, yb, fb, bb = collate([(torch.zeros(2, 3), 1, 0.5, True), (torch.ones(2, 3), 2, 1.5, False)])
    assert xb.shape == (2, 2, 3) and torch.equal(xb[1], torch.ones(2, 3))
    assert yb.dtype == torch.int64 and yb.tolist() == [1, 2]
    assert fb.dtype == torch.float32 and bb.dtype == torch.bool
    nb, ni = collate([(np.bool_(True), np.int32(3)), (np.bool_(False), np.int32(4))])
    assert nb.tolist() == [True, False] and ni.dtype == torch.int32

def test_collate_arrays_strings_and_nesting():
    Pair = namedtuple('Pair', 'a b')
    b = [{'img': np.zeros((2, 2), np.float32), 'meta': Pair(1, 'x'), 'ids': [3, torch.tensor(4)]},
         {'img': np.ones((2, 2), np.float32), 'meta': Pair(2, 'y'), 'ids': [5, torch.tensor(6)]}]
    res = collate(b)
    assert isinstance(res['img'], torch.Tensor) and res['img'].shape == (2, 2, 2)
    assert isinstance(res['meta'], Pair) and res['meta'].a.tolist() == [1, 2] and res['meta'].b == ['x', 'y']
    assert isinstance(res['ids'], list) and res['ids'][0].tolist() == [3, 5] and res['ids'][1].tolist() == [4, 6]

def test_collate_matches_torch_default_collate():
    b = [(torch.randn(3), i, {'k': torch.tensor(i)}) for i in range(4)]
    ours, theirs = collate(b), default_collate(b)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1]) and torch.equal(ours[2]['k'], theirs[2]['k'])

def test_collate_shape_mismatch_shows_the_shapes():
    b = [(torch.zeros(28, 28), 0), (torch.zeros(28, 28), 1), (torch.zeros(27, 28), 2)]
    with pytest.raises(ValueError, match=r"sample\[0\]: item 0 has shape \(28, 28\) but item 2 has shape \(27, 28\)"): collate(b)
    with pytest.raises(ValueError, match=r"sample\['img'\]"): collate([{'img': torch.zeros(2)}, {'img': torch.zeros(3)}])

@pytest.mark.parametrize('b,err,msg', [
    ([], ValueError, "empty"),
    ([(1, 2), (1, 2, 3)], ValueError, "item 0 has 2 fields, item 1"),
    ([{'a': 1}, {'b': 1}], ValueError, "item 0 has keys"),
    ([object(), object()], TypeError, "collate_fn"),
])
def test_collate_bad_samples(b, err, msg):
    with pytest.raises(err, match=msg): collate(b)

# ---------------------------------------------------------------- DataLoader: forms, epochs, fast path
def test_the_forms_agree():
    ds = Dataset(*make_xy(50))
    set_seed(0); course = list(DataLoader(ds, BatchSampler(Sampler(ds, shuffle=True), 8), collate_fn=collate))
    set_seed(0); familiar = list(DataLoader(ds, bs=8, shuffle=True))
    set_seed(0); positional = list(DataLoader(ds, 8, shuffle=True))
    assert_same_batches(course, familiar)
    assert_same_batches(course, positional)

def test_course_batch_sampler_of_lists():
    ds = Dataset(*make_xy(10))
    dl = DataLoader(ds, [[3, 1], [0, 2, 9]])
    assert dl.batched_fetch and labels(dl) == [3, 1, 0, 2, 9] and len(dl) == 2

@pytest.mark.parametrize('n,bs,drop_last', [(50, 8, False), (50, 8, True), (48, 8, True), (5, 64, False), (64, 64, True)])
def test_len_is_the_number_of_batches(n, bs, drop_last):
    dl = DataLoader(Dataset(*make_xy(n)), bs=bs, drop_last=drop_last)
    assert len(dl) == len(list(dl))

def test_default_batch_size_and_order():
    dl = DataLoader(Dataset(*make_xy(100)))
    assert dl.bs == 64 and labels(dl) == list(range(100))

def test_each_epoch_is_complete_and_reshuffled():
    dl = DataLoader(Dataset(*make_xy(50)), bs=8, shuffle=True)
    e1, e2 = labels(dl), labels(dl)
    assert sorted(e1) == sorted(e2) == list(range(50)) and e1 != e2

def test_set_seed_repeats_the_order():
    dl = DataLoader(Dataset(*make_xy(50)), bs=8, shuffle=True)
    set_seed(3); a = [labels(dl), labels(dl)]
    set_seed(3); b = [labels(dl), labels(dl)]
    assert a == b

def test_exposes_its_parts():
    ds = Dataset(*make_xy(10))
    dl = DataLoader(ds, bs=4, shuffle=True)
    assert dl.ds is ds and dl.dataset is ds and isinstance(dl.batch_sampler, BatchSampler)
    assert dl.sampler is dl.batch_sampler.sampler and dl.sampler.shuffle and dl.bs == 4
    assert DataLoader(ds, [[0, 1]]).sampler is None and DataLoader(ds, [[0, 1]]).bs is None

def test_sampler_argument():
    dl = DataLoader(Dataset(*make_xy(10)), bs=3, sampler=[9, 7, 5, 3, 1])
    assert labels(dl) == [9, 7, 5, 3, 1] and len(dl) == 2

@pytest.mark.parametrize('shuffle,drop_last,bs', [(False, False, 7), (True, False, 7), (True, True, 7), (True, False, 1), (False, False, 100)])
def test_fast_path_gives_the_same_batches(shuffle, drop_last, bs):
    x, y = make_xy(50)
    fast, slow = DataLoader(Dataset(x, y), bs=bs, shuffle=shuffle, drop_last=drop_last), \
                 DataLoader(PerItem(x, y), bs=bs, shuffle=shuffle, drop_last=drop_last)
    assert fast.batched_fetch and not slow.batched_fetch
    set_seed(1); a = list(fast)
    set_seed(1); b = list(slow)
    assert_same_batches(a, b)
    assert all(xa.is_contiguous() for xa, _ in a)

def test_fast_path_fetch_takes_lists_and_tensors():
    x, y = make_xy(10)
    dl = DataLoader(Dataset(x, y))
    for idxs in ([4, 2], torch.tensor([4, 2]), np.array([4, 2])):
        xb, yb = dl.fetch(idxs)
        assert torch.equal(xb, x[[4, 2]]) and yb.tolist() == [4, 2]

def test_when_the_fast_path_applies():
    x, y = make_xy(10)
    z = torch.zeros(10, 4)
    assert batch_tensors(Dataset(x, y)) == (x, y) and batch_tensors(TensorDataset(x, y, z)) == (x, y, z)
    assert batch_tensors(PerItem(x, y)) is None
    assert batch_tensors(Dataset(list(x), y)) is None
    assert batch_tensors(Dataset(x.numpy(), y.numpy())) is None
    assert batch_tensors(Subset(TensorDataset(x, y), range(5))) is None
    assert DataLoader(Dataset(x, y)).batched_fetch and DataLoader(TensorDataset(x, y)).batched_fetch
    assert not DataLoader(Dataset(x, y), collate_fn=lambda b: collate(b)).batched_fetch

def test_fast_path_follows_the_dataset_tensors():
    x, y = make_xy(10)
    ds = Dataset(x, y)
    dl = DataLoader(ds, bs=4)
    ds.x = x * 2                                               # the fast path reads the tensors at each batch
    assert torch.equal(next(iter(dl))[0], x[:4] * 2)

@pytest.mark.parametrize('num_workers', [0, 1])
def test_a_collate_set_after_construction_is_called(no_leftover_workers, num_workers):
    "batched_fetch is derived when a batch is made: a collate_fn set on the loader later is used (it was ignored)."
    calls = []
    def counting(b): calls.append(len(b)); return collate(b)
    dl = DataLoader(Dataset(*make_xy(10)), bs=4, num_workers=num_workers)
    assert dl.batched_fetch
    dl.collate_fn = counting
    assert not dl.batched_fetch and labels(dl) == list(range(10))
    if not num_workers: assert calls == [4, 4, 2]
    dl.collate_fn = collate                                    # and back to the fast path
    assert dl.batched_fetch and labels(dl) == list(range(10))

def test_a_dataset_set_after_construction_is_used():
    x, y = make_xy(10)
    dl = DataLoader(Dataset(x, y), bs=4)
    dl.ds = PerItem(x, y + 100)                                # fetched item by item now
    assert not dl.batched_fetch and labels(dl) == list(range(100, 110))
    dl.ds = TensorDataset(x, y + 200)                          # the fast path again
    assert dl.batched_fetch and labels(dl) == list(range(200, 210)) and dl.dataset is dl.ds

def test_fast_path_with_non_contiguous_tensors():
    x = torch.arange(60.).reshape(3, 20).t()                   # 20 items of 3 values, as a transposed view
    fast, slow = DataLoader(Dataset(x, torch.arange(20)), bs=6), DataLoader(PerItem(x, torch.arange(20)), bs=6)
    assert_same_batches(list(fast), list(slow))

def test_fast_path_index_out_of_range():
    with pytest.raises(IndexError): DataLoader(Dataset(*make_xy(5)), [[0, 7]]).fetch([0, 7])

def test_numpy_dataset_gives_tensors():
    x, y = make_xy(10)
    xb, yb = next(iter(DataLoader(Dataset(x.numpy(), y.numpy()), bs=4)))
    assert torch.equal(xb, x[:4]) and torch.equal(yb, y[:4])

# ---------------------------------------------------------------- bad input, at construction
ds10 = Dataset(*make_xy(10))

@pytest.mark.parametrize('args,kwargs,err,msg', [
    ((ds10,), dict(bs=0), ValueError, "bs must be at least 1"),
    ((ds10,), dict(bs=-3), ValueError, "bs must be at least 1"),
    ((ds10,), dict(bs=2.5), TypeError, "bs must be an int"),
    ((ds10, 0), {}, ValueError, "bs must be at least 1"),
    ((Dataset(torch.zeros(0, 2), torch.zeros(0)),), {}, ValueError, "empty dataset"),
    ((iter(range(3)),), {}, TypeError, "map-style dataset"),
    ((ds10,), dict(shuffle=True, sampler=Sampler(ds10)), ValueError, "not both"),
    ((ds10,), dict(num_workers=-1), ValueError, "num_workers must be at least 0"),
    ((ds10,), dict(num_workers=1.5), TypeError, "num_workers must be an int"),
    ((ds10,), dict(num_workers=2, prefetch_factor=0), ValueError, "prefetch_factor"),
    ((ds10,), dict(persistent_workers=True), ValueError, "persistent_workers=True .* needs num_workers > 0"),
    ((ds10,), dict(num_workers=1, persistent_workers=1), TypeError, "persistent_workers must be True or False"),
    ((ds10, [[0, 1]]), dict(bs=4), ValueError, "batch sampler already decides the batches; drop bs"),
    ((ds10, [[0, 1]]), dict(shuffle=True), ValueError, "drop shuffle"),
    ((ds10, 4), dict(bs=4), ValueError, "given twice"),
    ((ds10, None, 'collate'), {}, TypeError, "collate_fn must be callable"),
    ((ds10, Sampler(ds10)), {}, TypeError, "pass BatchSampler"),
    ((ds10,), dict(bs=11, drop_last=True), ValueError, "gives no batches"),
])
def test_bad_input_fails_at_construction(args, kwargs, err, msg):
    with pytest.raises(err, match=msg): DataLoader(*args, **kwargs)

# ---------------------------------------------------------------- workers
class Noisy(Dataset):
    "Each item also carries random numbers from torch, numpy and python, drawn in whatever process fetches it."
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x, y, torch.rand(()), np.random.rand(), random.random()

def noisy_epoch(dl) -> list:
    return [tuple(t.tolist() for t in batch) for batch in dl]

@pytest.mark.parametrize('num_workers', [1, 2, 3])
@pytest.mark.parametrize('per_item', [False, True])
def test_workers_give_the_same_batches_in_order(no_leftover_workers, num_workers, per_item):
    x, y = make_xy(101)
    ds = (PerItem if per_item else Dataset)(x, y)
    set_seed(2); want = list(DataLoader(ds, bs=7, shuffle=True)) + list(DataLoader(ds, bs=7, shuffle=True))
    dl = DataLoader(ds, bs=7, shuffle=True, num_workers=num_workers)
    set_seed(2); got = list(dl) + list(dl)
    assert_same_batches(got, want)

def test_workers_keep_order_when_a_later_batch_is_ready_first(no_leftover_workers):
    class SlowStart(PerItem):
        def __getitem__(self, i):
            if i < 4: sum(range(300_000))  # the first batch takes longer than the others
            return super().__getitem__(i)
    dl = DataLoader(SlowStart(*make_xy(40)), bs=4, num_workers=3)
    assert labels(dl) == list(range(40))

def test_workers_are_seeded_reproducibly(no_leftover_workers):
    ds = Noisy(*make_xy(40))
    dl = DataLoader(ds, bs=4, shuffle=True, num_workers=2)
    set_seed(7); a = [noisy_epoch(dl), noisy_epoch(dl)]
    set_seed(7); b = [noisy_epoch(DataLoader(ds, bs=4, shuffle=True, num_workers=2)) for _ in range(2)]
    assert a == b
    assert a[0] != a[1]                                        # a new epoch, new random numbers
    for k in (2, 3, 4):                                        # torch, numpy and python are all seeded ...
        assert a[0][0][k] != a[0][1][k]                        # ... differently in the two workers
    set_seed(8)
    assert noisy_epoch(dl) != a[0]                             # another seed, other numbers

def test_global_rng_runs_the_same_with_or_without_workers(no_leftover_workers):
    ds = Dataset(*make_xy(30))
    set_seed(4); a = [labels(DataLoader(ds, bs=4, shuffle=True, num_workers=2)) for _ in range(2)] + [torch.rand(3).tolist()]
    set_seed(4); b = [labels(DataLoader(ds, bs=4, shuffle=True)) for _ in range(2)] + [torch.rand(3).tolist()]
    assert a == b

class Failing(PerItem):
    "Raises on item 13."
    def __getitem__(self, i):
        if i == 13: raise ValueError(f"item {i} is broken")
        return super().__getitem__(i)

def test_worker_exception_is_raised_with_its_traceback(no_leftover_workers):
    with pytest.raises(ValueError, match="item 13 is broken") as info:
        list(DataLoader(Failing(*make_xy(40)), bs=4, num_workers=2))
    cause = str(info.value.__cause__)
    assert "DataLoader worker 1 raised" in cause and "Traceback" in cause and "in __getitem__" in cause

class TwoArgError(Exception):
    def __init__(self, a, b): super().__init__(f"{a} and {b}")

def test_worker_exception_that_does_not_pickle(no_leftover_workers):
    class Raising(PerItem):
        def __getitem__(self, i): raise TwoArgError('this', 'that')
    with pytest.raises(RuntimeError, match="TwoArgError: this and that") as info:
        list(DataLoader(Raising(*make_xy(10)), bs=4, num_workers=1))
    assert "in __getitem__" in str(info.value.__cause__)

def test_worker_batch_that_does_not_pickle(no_leftover_workers):
    with pytest.raises(Exception, match="pickle") as info:
        list(DataLoader(Dataset(*make_xy(10)), bs=4, num_workers=1, collate_fn=lambda b: (lambda: b)))
    assert "DataLoader worker 0 raised" in str(info.value.__cause__)

@pytest.mark.parametrize('framed', [False, True])
def test_worker_that_dies_is_reported(no_leftover_workers, framed, request):
    if framed: request.getfixturevalue('framed_transport')  # the Windows transport, see below
    class Dying(PerItem):
        def __getitem__(self, i):
            if i == 5: os._exit(3)
            return super().__getitem__(i)
    with pytest.raises(RuntimeError, match="worker 1 .* died unexpectedly \\(exit code 3\\)"):
        list(DataLoader(Dying(*make_xy(20)), bs=4, num_workers=2))

def test_no_worker_left_after_break(no_leftover_workers):
    for i, _ in enumerate(DataLoader(PerItem(*make_xy(100)), bs=4, num_workers=2)):
        if i == 3: break

def test_no_worker_left_after_exception_in_the_loop(no_leftover_workers):
    with pytest.raises(KeyError):
        for _ in DataLoader(PerItem(*make_xy(100)), bs=4, num_workers=2): raise KeyError('in the loop')

def test_no_worker_left_when_the_iterator_is_collected(no_leftover_workers):
    it = iter(DataLoader(PerItem(*make_xy(100)), bs=4, num_workers=2))
    next(it)
    assert len(multiprocessing.active_children()) == 2
    del it
    gc.collect()

def test_no_worker_started_before_the_first_batch(no_leftover_workers):
    it = iter(DataLoader(PerItem(*make_xy(100)), bs=4, num_workers=2))
    assert multiprocessing.active_children() == []
    del it

def test_prefetch_is_bounded(no_leftover_workers):
    class Counted:
        "A batch sampler that counts the batches taken from it."
        def __init__(self): self.taken = 0
        def __len__(self): return 50
        def __iter__(self):
            for i in range(50):
                self.taken += 1
                yield [i]
    bsamp = Counted()
    it = iter(DataLoader(PerItem(*make_xy(50)), bsamp, num_workers=2, prefetch_factor=3))
    assert next(it)[1].tolist() == [0]
    assert bsamp.taken == 1 + 2*3                              # the batch handed over and 3 ahead per worker
    assert next(it)[1].tolist() == [1] and bsamp.taken == 2 + 2*3
    del it

Pair = namedtuple('Pair', 'a b')

class Mixed(torch.utils.data.Dataset):
    "Items holding tensors of several dtypes and shapes, in dicts, lists and named tuples, and strings."
    def __len__(self): return 13
    def __getitem__(self, i):
        return {'f': torch.full((3,), i/3), 'bf16': torch.tensor([i], dtype=torch.bfloat16), 'flag': torch.tensor(i % 2 == 0),
                'empty': torch.zeros(0, 2), 'scalar': i, 'name': f'item{i}',
                'nested': [Pair(torch.tensor(i), torch.arange(i, i+4).reshape(2, 2).t()), (torch.tensor(-i, dtype=torch.int8),)]}

def assert_same(a, b):
    "`a` and `b` are equal, structure, types and tensors (dtype, shape and values) alike."
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor): assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict): assert a.keys() == b.keys() and all(assert_same(a[k], b[k]) is None for k in a)
    elif isinstance(a, (list, tuple)): assert len(a) == len(b) and all(assert_same(x, y) is None for x, y in zip(a, b))
    else: assert a == b

def test_workers_send_every_kind_of_batch(no_leftover_workers):
    want = list(DataLoader(Mixed(), bs=4))
    assert_same(list(DataLoader(Mixed(), bs=4, num_workers=2)), want)
    assert want[0]['nested'][0].b.shape == (4, 2, 2) and want[0]['bf16'].dtype == torch.bfloat16

class Box:
    "A batch in an object the transport does not look into: pickled as it is."
    def __init__(self, t): self.t = t
    def __eq__(self, other): return torch.equal(self.t, other.t)

def test_workers_send_non_contiguous_and_wrapped_tensors(no_leftover_workers):
    ds = Dataset(*make_xy(20))
    transposed = lambda b: collate(b)[0].transpose(1, 2)
    assert_same(list(DataLoader(ds, bs=6, collate_fn=transposed, num_workers=2)), list(DataLoader(ds, bs=6, collate_fn=transposed)))
    boxed = lambda b: Box(collate(b)[0])
    assert_same(list(DataLoader(ds, bs=6, collate_fn=boxed, num_workers=2)), list(DataLoader(ds, bs=6, collate_fn=boxed)))

def test_workers_send_batches_larger_than_the_pipe(no_leftover_workers):
    x = torch.randn(24, 128, 128)                              # batches of 8 images: 512 KiB each, 1.5 MiB in flight
    ds = Dataset(x, torch.arange(24))
    assert_same_batches(list(DataLoader(ds, bs=8, num_workers=2, prefetch_factor=3)), list(DataLoader(ds, bs=8)))
    big = Dataset(torch.randn(4, 1024, 1024), torch.arange(4))  # 8 MiB per batch
    assert_same_batches(list(DataLoader(big, bs=2, num_workers=1)), list(DataLoader(big, bs=2)))

@pytest.fixture
def framed_transport(monkeypatch):
    "Send batches through Connection's framing, the transport for pipes that are not file descriptors (Windows)."
    import minitrain.data as md
    for name in ('_write_all', '_read_into', '_discard'): monkeypatch.setattr(md, name, getattr(md, '_framed' + name))

def test_the_framed_transport_sends_every_kind_of_batch(no_leftover_workers, framed_transport):
    assert_same(list(DataLoader(Mixed(), bs=4, num_workers=2)), list(DataLoader(Mixed(), bs=4)))
    big = Dataset(torch.randn(6, 512, 512), torch.arange(6))   # 2 MiB batches, more than the pipe holds
    assert_same_batches(list(DataLoader(big, bs=2, num_workers=2)), list(DataLoader(big, bs=2)))

def test_the_framed_transport_stops_workers_with_batches_in_flight(no_leftover_workers, framed_transport):
    big = Dataset(torch.randn(16, 256, 256), torch.arange(16))
    for i, _ in enumerate(DataLoader(big, bs=2, num_workers=2, prefetch_factor=3)):
        if i == 1: break                                       # `close` drains what the workers still send

# ---------------------------------------------------------------- persistent workers
def worker_pids(dl) -> list:
    "The process ids of the workers kept on `dl` (empty if none are kept)."
    return [p.pid for p in dl._kept_pool.procs] if dl._kept_pool is not None else []

def test_persistent_workers_give_the_same_batches_as_new_ones(no_leftover_workers):
    ds = Noisy(*make_xy(40))
    set_seed(7); want = [noisy_epoch(DataLoader(ds, bs=4, shuffle=True, num_workers=2)) for _ in range(3)]
    dl = DataLoader(ds, bs=4, shuffle=True, num_workers=2, persistent_workers=True)
    set_seed(7); got = [noisy_epoch(dl) for _ in range(3)]
    assert got == want and got[0] != got[1]                    # seeded anew each epoch, as new workers would be
    del dl

def test_persistent_workers_are_kept_between_epochs_and_stop_with_the_dataloader(no_leftover_workers):
    dl = DataLoader(PerItem(*make_xy(30)), bs=4, num_workers=2, persistent_workers=True)
    assert labels(dl) == list(range(30))
    pids = worker_pids(dl)
    assert len(pids) == 2 and sorted(p.pid for p in multiprocessing.active_children()) == sorted(pids)
    assert labels(dl) == list(range(30)) and worker_pids(dl) == pids
    del dl                                                     # the fixture checks that the workers are gone

def test_persistent_workers_left_early_or_failed_are_replaced(no_leftover_workers):
    class FailsOnce(PerItem):
        fail = False
        def __getitem__(self, i):
            if self.fail and i == 9: raise KeyError(i)
            return super().__getitem__(i)
    ds = FailsOnce(*make_xy(30))
    dl = DataLoader(ds, bs=4, num_workers=2, persistent_workers=True)
    list(dl); first = worker_pids(dl)
    for i, _ in enumerate(dl):
        if i == 2: break                                       # left early: the pool is closed, not kept
    assert dl._kept_pool is None and multiprocessing.active_children() == []
    assert labels(dl) == list(range(30)) and worker_pids(dl) != first
    dl._kept_pool.procs[0].kill(); dl._kept_pool.procs[0].join()  # a worker dies between epochs: the next epoch starts new ones
    assert labels(dl) == list(range(30))
    ds.fail = True; dl._kept_pool.close(); dl._kept_pool = None  # new workers, which see `fail`
    with pytest.raises(KeyError): list(dl)
    assert dl._kept_pool is None and multiprocessing.active_children() == []

def test_a_dataloader_with_kept_workers_copies_and_pickles_without_them(no_leftover_workers):
    import copy, pickle
    dl = DataLoader(Dataset(*make_xy(12)), bs=4, num_workers=1, persistent_workers=True)
    list(dl)
    for other in (copy.deepcopy(dl), pickle.loads(pickle.dumps(dl))):
        assert other._kept_pool is None and labels(other) == list(range(12))
        del other
    assert len(multiprocessing.active_children()) == 1
    del dl

def test_two_epochs_of_one_persistent_dataloader_at_once(no_leftover_workers):
    dl = DataLoader(Dataset(*make_xy(12)), bs=4, num_workers=1, persistent_workers=True)
    assert [(a[1].tolist(), b[1].tolist()) for a, b in zip(dl, dl)] == [([i, i+1, i+2, i+3],)*2 for i in (0, 4, 8)]
    assert len(multiprocessing.active_children()) == 1         # one pool kept, the other closed
    del dl

# ---------------------------------------------------------------- PyTorch interop
def test_torch_dataloader_takes_our_dataset():
    x, y = make_xy(50)
    ds = Dataset(x, y)
    assert_same_batches(list(torch.utils.data.DataLoader(ds, batch_size=7)), list(DataLoader(ds, bs=7)))

def test_torch_dataloader_with_workers_takes_our_dataset(no_leftover_workers):
    x, y = make_xy(50)
    ds = PerItem(x, y)
    assert_same_batches(list(torch.utils.data.DataLoader(ds, batch_size=7, num_workers=2)), list(DataLoader(ds, bs=7)))

def test_torch_dataloader_takes_our_samplers():
    ds = Dataset(*make_xy(50))
    gen = lambda: torch.Generator().manual_seed(0)
    ours = labels(DataLoader(ds, bs=8, sampler=Sampler(ds, shuffle=True, generator=gen())))
    assert labels(torch.utils.data.DataLoader(ds, batch_size=8, sampler=Sampler(ds, shuffle=True, generator=gen()))) == ours
    assert labels(torch.utils.data.DataLoader(ds, batch_sampler=BatchSampler(Sampler(ds, True, gen()), 8))) == ours
    assert sorted(ours) == list(range(50)) and ours != list(range(50))

def test_our_dataloader_takes_torch_datasets():
    x, y = make_xy(50)
    tds = TensorDataset(x, y)
    dl = DataLoader(tds, bs=7)
    assert dl.batched_fetch
    assert_same_batches(list(dl), list(torch.utils.data.DataLoader(tds, batch_size=7)))
    sub = DataLoader(Subset(tds, [5, 3, 1]), bs=2)
    assert not sub.batched_fetch and labels(sub) == [5, 3, 1]

def test_our_dataloader_takes_a_torch_dataset_of_dicts():
    class Dicts(torch.utils.data.Dataset):
        def __len__(self): return 10
        def __getitem__(self, i): return {'x': torch.full((2,), float(i)), 'y': i}
    ours, theirs = next(iter(DataLoader(Dicts(), bs=4))), next(iter(torch.utils.data.DataLoader(Dicts(), batch_size=4)))
    assert torch.equal(ours['x'], theirs['x']) and torch.equal(ours['y'], theirs['y'])

# ---------------------------------------------------------------- variants: DataLoader.new
class Tagged(DataLoader):
    "A subclass with an attribute of its own, which `new` must keep."
    tag = None

def test_new_keeps_the_class_and_every_setting(no_leftover_workers):
    custom = lambda b: collate(b)
    dl = Tagged(PerItem(*make_xy(10)), bs=3, shuffle=True, drop_last=True, collate_fn=custom, num_workers=1,
                prefetch_factor=3, timeout=7.5, persistent_workers=True)
    dl.tag = 'mine'
    for v in (dl.new(shuffle=False, drop_last=False), dl.new(sampler=[9, 8, 7]), dl.new(BatchSampler(Sampler(dl.ds), 5))):
        assert type(v) is Tagged and v.tag == 'mine' and v.collate_fn is custom and v.ds is dl.ds
        assert (v.num_workers, v.prefetch_factor, v.timeout, v.persistent_workers) == (1, 3, 7.5, True)
        assert v._kept_pool is None
    assert labels(dl.new(shuffle=False, drop_last=False)) == list(range(10))
    assert labels(dl.new(sampler=[9, 8, 7, 6])) == [9, 8, 7]             # bs=3 and drop_last kept
    assert labels(dl.new(BatchSampler(Sampler(dl.ds), 5))) == list(range(10))
    assert dl.sampler.shuffle and dl.bs == 3 and dl.batch_sampler.drop_last  # the original is unchanged
    del dl; gc.collect()

def test_new_defaults_to_this_loaders_sampler_and_checks_like_the_constructor():
    ds = Dataset(*make_xy(10))
    dl = DataLoader(ds, bs=4, sampler=[3, 1, 4, 1, 5])
    assert labels(dl.new()) == [3, 1, 4, 1, 5] and labels(dl.new(bs=2)) == [3, 1, 4, 1, 5] and dl.new(bs=2).bs == 2
    assert labels(dl.new(drop_last=True)) == [3, 1, 4, 1]
    with pytest.raises(ValueError, match='not both'): dl.new(sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match='already decides'): dl.new([[0, 1]], bs=2)
    with pytest.raises(ValueError, match='gives no batches'): dl.new(bs=11, drop_last=True)

# ---------------------------------------------------------------- DataLoaders
def test_dataloaders_from_dsets():
    train, valid = Dataset(*make_xy(50)), Dataset(*make_xy(30))
    dls = DataLoaders.from_dsets(train, valid, bs=8, shuffle=True, drop_last=True, num_workers=1)
    assert dls.train.bs == 8 and dls.valid.bs == 16
    assert dls.train.sampler.shuffle and not dls.valid.sampler.shuffle
    assert dls.train.batch_sampler.drop_last and not dls.valid.batch_sampler.drop_last
    assert dls.train.num_workers == dls.valid.num_workers == 1
    assert dls.train.ds is train and dls.valid.ds is valid
    assert labels(dls.valid) == list(range(30))

def test_dataloaders_defaults_and_options():
    train, valid = Dataset(*make_xy(50)), Dataset(*make_xy(30))
    dls = DataLoaders.from_dsets(train, valid)
    assert dls.train.bs == 64 and dls.valid.bs == 128 and dls.train.sampler.shuffle
    assert not DataLoaders.from_dsets(train, valid, 8, shuffle=False).train.sampler.shuffle
    custom = lambda b: collate(b)
    dls = DataLoaders.from_dsets(train, valid, 8, collate_fn=custom)
    assert dls.train.collate_fn is custom and dls.valid.collate_fn is custom
    plain = DataLoaders(dls.valid, dls.train)
    assert plain.train is dls.valid and plain.valid is dls.train

@pytest.mark.parametrize('kwargs,err', [(dict(bs=0), ValueError), (dict(sampler=[0, 1]), TypeError)])
def test_dataloaders_bad_input(kwargs, err):
    with pytest.raises(err): DataLoaders.from_dsets(Dataset(*make_xy(10)), Dataset(*make_xy(10)), **kwargs)

def test_two_worker_loaders_at_once(no_leftover_workers):
    a, b = DataLoader(PerItem(*make_xy(30)), bs=4, num_workers=2), DataLoader(PerItem(*make_xy(20)), bs=2, num_workers=1)
    pairs = list(zip(a, b))
    assert [yb.tolist() for (_, yb), _ in pairs] == [list(range(i, min(i+4, 30))) for i in range(0, 30, 4)][:len(pairs)]
    assert len(pairs) == min(len(a), len(b))
