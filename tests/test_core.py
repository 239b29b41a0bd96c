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
