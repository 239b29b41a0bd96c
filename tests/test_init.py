"The init stage: BatchNorm and LayerNorm against PyTorch, lsuv_init, GeneralRelu, init_weights, the conv block."
import math
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from minitrain.init import *

def n_hooks(model): return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

# ---- BatchNorm ------------------------------------------------------------------------------------------

def _copy_bn(ref, ours):
    with torch.no_grad():
        ref.weight.copy_(torch.rand_like(ref.weight) + 0.5); ref.bias.copy_(torch.randn_like(ref.bias))
        ours.mults.copy_(ref.weight); ours.adds.copy_(ref.bias)

def assert_same_forward_backward(ours, ref, x):
    "Feed `x` to both modules: the same outputs and, for one random output gradient, the same input gradients."
    x, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    assert torch.allclose(out, out_ref, atol=1e-5)
    g = torch.randn_like(out)
    out.backward(g); out_ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)

@pytest.mark.parametrize('shape,ref_cls', [((6, 5, 7, 7), nn.BatchNorm2d), ((16, 5), nn.BatchNorm1d), ((4, 5, 9), nn.BatchNorm1d)])
@pytest.mark.parametrize('mom', [0.1, 0.3])
def test_batchnorm_matches_torch(shape, ref_cls, mom):
    torch.manual_seed(0)
    ours, ref = BatchNorm(5, mom=mom), ref_cls(5, momentum=mom)
    _copy_bn(ref, ours)
    for step in range(4):
        assert_same_forward_backward(ours, ref, torch.randn(*shape) * 3 + 2)
        assert torch.allclose(ours.mults.grad, ref.weight.grad, atol=1e-4) and torch.allclose(ours.adds.grad, ref.bias.grad, atol=1e-4)
        assert torch.allclose(ours.means, ref.running_mean, atol=1e-5) and torch.allclose(ours.vars, ref.running_var, atol=1e-5)
    ours.eval(); ref.eval()
    x = torch.randn(*shape)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)

def test_batchnorm_no_affine_and_in_conv():
    x = torch.randn(4, 3, 5, 5)
    assert torch.allclose(BatchNorm(3, affine=False)(x), nn.BatchNorm2d(3, affine=False)(x), atol=1e-5)
    assert list(BatchNorm(3, affine=False).parameters()) == []
    c = conv(1, 3, norm=BatchNorm)
    assert isinstance(c[1], BatchNorm) and c[0].bias is None and c(torch.randn(2, 1, 8, 8)).shape == (2, 3, 4, 4)

def test_batchnorm_bad_input():
    with pytest.raises(ValueError, match='N×3'): BatchNorm(3)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match='batch of 2'): BatchNorm(3)(torch.randn(1, 3))

def test_batchnorm_state_dict_round_trip():
    bn = BatchNorm(3); bn(torch.randn(8, 3))
    bn2 = BatchNorm(3); bn2.load_state_dict(bn.state_dict())
    assert torch.equal(bn2.means, bn.means) and set(bn.state_dict()) == {'mults', 'adds', 'means', 'vars'}

# ---- LayerNorm ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('shape,norm_shape', [((4, 10), 10), ((3, 6, 8), (8,)), ((2, 4, 5, 5), (4, 5, 5))])
def test_layernorm_matches_torch(shape, norm_shape):
    torch.manual_seed(0)
    ours, ref = LayerNorm(norm_shape), nn.LayerNorm(norm_shape)
    with torch.no_grad():
        ref.weight.copy_(torch.rand_like(ref.weight) + 0.5); ref.bias.copy_(torch.randn_like(ref.bias))
        ours.weight.copy_(ref.weight); ours.bias.copy_(ref.bias)
    assert_same_forward_backward(ours, ref, torch.randn(*shape) * 2 - 1)
    assert torch.allclose(ours.weight.grad, ref.weight.grad, atol=1e-5) and torch.allclose(ours.bias.grad, ref.bias.grad, atol=1e-5)

def test_layernorm_no_affine_and_bad_shape():
    x = torch.randn(3, 7)
    assert torch.allclose(LayerNorm(7, elementwise_affine=False)(x), F.layer_norm(x, (7,)), atol=1e-5)
    with pytest.raises(ValueError, match='last dims'): LayerNorm(5)(x)

# ---- lsuv_init ------------------------------------------------------------------------------------------

def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), GeneralRelu(0.1, 0.4), nn.Conv2d(8, 16, 3, 2, 1), GeneralRelu(0.1, 0.4),
                         nn.Flatten(), nn.Linear(16*4*4, 10))

def test_lsuv_unit_stats_on_fresh_batch():
    model = small_net()
    lsuv_init(model, GeneralRelu, torch.randn(512, 1, 16, 16))
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in model if isinstance(m, GeneralRelu)]
    with torch.no_grad(): model(torch.randn(512, 1, 16, 16))
    for h in hooks: h.remove()
    for o in outs: assert abs(o.mean()) < 0.05 and abs(o.std() - 1) < 0.05
    assert n_hooks(model) == 0

def test_lsuv_layers_that_do_not_change_variance():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    calls = []
    model[0].register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(RuntimeError, match=r"after 7 tries the output of '2'.*normalisation layer"):
        lsuv_init(model, nn.ReLU, torch.randn(16, 1, 8, 8), max_iters=7)
    assert len(calls) == 7 and n_hooks(model) == 1  # only the test's own hook is left

def test_lsuv_bad_input():
    with pytest.raises(ValueError, match='picks none'): lsuv_init(small_net(), nn.LSTM, torch.randn(4, 1, 16, 16))
    with pytest.raises(ValueError, match='no convolution or linear layer comes before'):
        lsuv_init(nn.Sequential(nn.ReLU(), nn.Linear(3, 3)), nn.ReLU, torch.randn(4, 3))
    dead = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with torch.no_grad(): dead[0].weight.zero_(); dead[0].bias.fill_(-1.)
    with pytest.raises(RuntimeError, match='std 0'): lsuv_init(dead, nn.ReLU, torch.randn(4, 3))

def test_lsuv_without_bias_fixes_std():
    model = nn.Sequential(nn.Linear(20, 20, bias=False), nn.Identity())
    lsuv_init(model, nn.Identity, torch.randn(1000, 20))
    assert abs(model(torch.randn(1000, 20)).std() - 1) < 0.05

# ---- GeneralRelu, init_weights, conv ---------------------------------------------------------------------

def test_general_relu():
    x = torch.randn(100)
    assert torch.equal(GeneralRelu()(x), F.relu(x))
    assert torch.allclose(GeneralRelu(0.1, 0.4, 2.)(x), (F.leaky_relu(x, 0.1) - 0.4).clamp_max(2.))
    x2 = x.clone(); GeneralRelu(0.1, 0.4)(x2)
    assert torch.equal(x, x2)  # the input is not changed in place

def test_init_weights():
    torch.manual_seed(0)
    c = nn.Conv2d(64, 64, 3).apply(init_weights)
    assert abs(c.weight.std().item() - math.sqrt(2/(64*9))) < 2e-3
    lin = nn.Linear(500, 500).apply(lambda m: init_weights(m, leaky=0.1))
    assert abs(lin.weight.std().item() - math.sqrt(2/(1.01*500))) < 2e-3
    bn = nn.BatchNorm2d(3); init_weights(bn)
    assert torch.equal(bn.weight, torch.ones(3))

def test_conv_block():
    c = conv(3, 8, ks=5, stride=1, act=GeneralRelu, norm=None)
    assert [type(o) for o in c] == [nn.Conv2d, GeneralRelu] and c[0].bias is not None and c[0].padding == (2, 2)
    assert c(torch.randn(1, 3, 9, 9)).shape == (1, 8, 9, 9)
    # no norm by default, as the course's conv (lesson 11 trains a plain CNN); batch norm when asked
    assert [type(o) for o in conv(3, 8)] == [nn.Conv2d, nn.ReLU] and conv(3, 8)[0].bias is not None
    assert len(conv(3, 8, act=None, norm=nn.BatchNorm2d)) == 2 and len(conv(3, 8, act=False, norm=False)) == 1
    with pytest.raises(TypeError, match='nn.ReLU'): conv(3, 8, act=True)
    with pytest.raises(TypeError, match='module class'): conv(3, 8, norm='batch')

def test_course_models_unchanged():
    "cnn and resnet keep the layers and parameter names the tutorial's checkpoints hold."
    from minitrain.models import cnn, resnet
    m = cnn()
    assert [type(o) for o in m[0]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] and m[0][0].bias is None
    assert sum(p.numel() for p in m.parameters()) == 98_682
    assert '1.convs.1.1.running_var' in resnet().state_dict() and len(resnet().state_dict()) == 62
