import random
from collections import namedtuple
import numpy as np
import pytest
import torch
from minitrain.core import def_device, best_device, to_device, to_cpu, set_seed

def test_def_device_is_best_available():
    assert def_device == best_device()
    assert def_device in ('cuda', 'mps', 'cpu')
    if not torch.cuda.is_available(): assert def_device != 'cuda'

def test_to_device_walks_nested_structures():
    Batch = namedtuple('Batch', 'x y')
    b = {'a': [torch.zeros(2), (torch.ones(1), 3)], 'b': Batch(torch.zeros(1), 'text'), 'c': None}
    out = to_device(b, 'cpu')
    assert isinstance(out['a'], list) and isinstance(out['a'][1], tuple)
    assert isinstance(out['b'], Batch) and out['b'].y == 'text'
    assert out['a'][1][1] == 3 and out['c'] is None
    assert all(t.device.type == 'cpu' for t in (out['a'][0], out['a'][1][0], out['b'].x))

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_to_cpu_makes_half_float32_and_detaches(dtype):
    x = torch.ones(3, dtype=dtype, requires_grad=True)
    out = to_cpu((x*2, [x]))
    assert out[0].dtype == torch.float32 and not out[0].requires_grad
    assert out[1][0].dtype == torch.float32

def test_to_cpu_keeps_other_dtypes():
    assert to_cpu(torch.arange(3)).dtype == torch.int64
    assert to_cpu(torch.ones(2, dtype=torch.float64)).dtype == torch.float64

def draw(): return random.random(), np.random.rand(), torch.rand(3).tolist(), torch.randperm(10).tolist()

def test_set_seed_reproduces_every_generator():
    set_seed(123); a = draw()
    set_seed(123); b = draw()
    set_seed(124); c = draw()
    assert a == b and a != c

def test_set_seed_deterministic_flag_round_trips():
    try:
        set_seed(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        set_seed(0)
    assert not torch.are_deterministic_algorithms_enabled()

@pytest.mark.parametrize('bad,err', [(1.5, TypeError), ('1', TypeError), (True, TypeError), (-1, ValueError), (2**32, ValueError)])
def test_set_seed_bad_input(bad, err):
    with pytest.raises(err, match='seed'): set_seed(bad)

# --- shared helpers: map_nested, check_int, listify, atomic_write, RNG states
import os
from pathlib import Path
from minitrain.core import map_nested, check_int, ArgumentError, listify, atomic_write, get_rng_states, set_rng_states

def test_map_nested_applies_to_leaves_of_the_given_type_only():
    Pair = namedtuple('Pair', 'a b')
    x = {'k': [1, (2, 's')], 'p': Pair(3, 4.5), 'n': None}
    out = map_nested(lambda v: v*10, x, int)
    assert out == {'k': [10, (20, 's')], 'p': Pair(30, 4.5), 'n': None} and isinstance(out['p'], Pair)

def test_map_nested_leaf_type_wins_over_tuple():
    Spec = namedtuple('Spec', 'shape')
    assert map_nested(lambda s: s.shape, [Spec(3), (Spec(4),)], Spec) == [3, (4,)]

@pytest.mark.parametrize('v', [1, np.int64(1), 7])
def test_check_int_accepts_integers(v):
    assert check_int(v, 'n', 1, 8) == int(v) and type(check_int(v, 'n')) is int

@pytest.mark.parametrize('v', [True, 1.0, '1', None, 0, 8])
def test_check_int_rejects_with_name_range_and_hint(v):
    with pytest.raises(ArgumentError, match=r"f: n must be an integer in \[1, 8\) \(a count\), got"):
        check_int(v, 'n', 1, 8, hint='a count', where='f')

def test_check_int_error_is_both_type_and_value_error():
    for err in (TypeError, ValueError):
        with pytest.raises(err): check_int(False, 'n', 0)

def test_listify():
    assert listify(None) == [] and listify('a') == ['a'] and listify((1, 2)) == [1, 2] and listify([3]) == [3]

def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path/'f.bin'
    assert atomic_write(p, lambda f: f.write(b'one')) == p and p.read_bytes() == b'one'
    atomic_write(p, lambda f: f.write('two'), text=True)
    assert p.read_text() == 'two' and os.listdir(tmp_path) == ['f.bin']

def test_atomic_write_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path/'f.txt'
    p.write_text('old')
    def boom(f):
        f.write('partial')
        raise RuntimeError('stop')
    with pytest.raises(RuntimeError, match='stop'): atomic_write(p, boom, text=True)
    assert p.read_text() == 'old' and os.listdir(tmp_path) == ['f.txt']

def test_atomic_write_temporary_is_unpredictable_and_in_the_target_folder(tmp_path):
    seen = []
    def note(f): seen.extend(n for n in os.listdir(tmp_path) if n != 'a')  # the temporary file, while it is written
    atomic_write(tmp_path/'a', note); atomic_write(tmp_path/'a', note)
    assert len(seen) == 2 and all(n.startswith('.a.') and n.endswith('.tmp') for n in seen) and seen[0] != seen[1]

def test_atomic_write_does_not_follow_a_planted_file(tmp_path):
    # mkstemp opens with O_EXCL, so a file already at a guessed name is never written through
    planted = tmp_path/'.a.planted.tmp'
    planted.write_text('keep')
    atomic_write(tmp_path/'a', lambda f: f.write(b'x'))
    assert planted.read_text() == 'keep' and (tmp_path/'a').read_bytes() == b'x'

def test_rng_states_round_trip_every_generator():
    s = get_rng_states()
    a = draw()
    draw()
    set_rng_states(s)
    assert draw() == a

def test_rng_states_load_without_pickle(tmp_path):
    torch.save(get_rng_states(), tmp_path/'s.pth')
    s = torch.load(tmp_path/'s.pth', weights_only=True)
    a = draw(); set_rng_states(s)
    assert draw() == a

def test_default_threads_ignores_the_load_average(monkeypatch):
    import os, minitrain.core as core
    n = core.default_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, 'getloadavg', lambda: (100., 100., 100.))
    assert core.default_threads() == n  # what else runs must not change a run's thread count, hence its losses
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0})
    assert core.default_threads() == 1

def test_set_seed_does_not_import_the_compiler():
    import subprocess, sys
    code = "import sys, minitrain.core as c; c.set_seed(1); print(any(m.startswith('torch._inductor') for m in sys.modules))"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == 'False'
