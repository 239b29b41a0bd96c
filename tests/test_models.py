"The models stage (15_tutorial_fashion_mnist): fastai's bag-of-tricks `xresnet18/34/50`, and fastai's model names."
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from minitrain.models import *
import minitrain.all as mall

def n_params(m): return sum(p.numel() for p in m.parameters())

# fastai's xresnet18/34/50 (n_out=1000): torchvision's resnet18/34/50 (11,689,512, 21,797,672, 25,557,032) with the
# 7×7 stem (9,408 + 128 for its batch norm) replaced by three 3×3 convs 3→32→32→64 (28,512 + 256): 19,232 more.
@pytest.mark.parametrize('f,n', [(xresnet18, 11_708_744), (xresnet34, 21_816_904), (xresnet50, 25_576_264)])
def test_parameter_counts_are_fastais(f, n):
    assert n_params(f()) == n

@pytest.mark.parametrize('f', [xresnet18, xresnet34, xresnet50])
def test_forward_shapes_n_out_and_c_in(f):
    m = f(n_out=10).eval()
    assert isinstance(m, nn.Sequential) and m[-1].out_features == 10
    with torch.no_grad():
        assert m(torch.randn(2, 3, 64, 64)).shape == (2, 10)
        assert f(c_in=1, n_out=7).eval()(torch.randn(2, 1, 28, 28)).shape == (2, 7)  # Fashion-MNIST's size
        assert f()(torch.randn(2, 3, 32, 32)).shape == (2, 1000)  # fastai's default n_out

def test_structure_stem_groups_and_head():
    m = xresnet50(n_out=10)
    stem = [l for l in m[:3]]
    assert [(s[0].in_channels, s[0].out_channels, s[0].kernel_size, s[0].stride) for s in stem] == [
        (3, 32, (3, 3), (2, 2)), (32, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))]
    assert isinstance(m[3], nn.MaxPool2d)
    groups = [g for g in m if isinstance(g, nn.Sequential) and isinstance(g[0], XResBlock)]
    assert [len(g) for g in groups] == [3, 4, 6, 3]
    assert [g[-1].convs[-1][0].out_channels for g in groups] == [256, 512, 1024, 2048]
    assert isinstance(m[-1], nn.Linear) and m[-1].in_features == 2048 and isinstance(m[-2], nn.Dropout)
    assert [len(g) for g in xresnet34() if isinstance(g, nn.Sequential) and isinstance(g[0], XResBlock)] == [3, 4, 6, 3]

def test_resnet_d_shortcut_pools_then_convolves():
    "Where a block halves the size, the shortcut average-pools then 1×1-convolves; the main path strides on its 3×3."
    blk = xresnet50()[5][0]  # the first block of the second group
    assert isinstance(blk.pool, nn.AvgPool2d) and blk.idconv[0].kernel_size == (1, 1) and blk.idconv[0].stride == (1, 1)
    assert [c[0].stride for c in blk.convs] == [(1, 1), (2, 2), (1, 1)]
    assert [c[0].kernel_size for c in blk.convs] == [(1, 1), (3, 3), (1, 1)]
    blk = xresnet18()[5][0]
    assert [c[0].stride for c in blk.convs] == [(2, 2), (1, 1)] and isinstance(blk.pool, nn.AvgPool2d)
    assert isinstance(xresnet18()[4][0].idconv, nn.Identity)  # same shape: the identity shortcut

@pytest.mark.parametrize('f', [xresnet18, xresnet50])
def test_last_batch_norm_of_each_block_is_zero_and_others_one(f):
    m = f()
    blocks = [b for b in m.modules() if isinstance(b, XResBlock)]
    assert len(blocks) == (8 if f is xresnet18 else 16)
    for b in blocks:
        bns = [l for l in b.convs.modules() if isinstance(l, nn.BatchNorm2d)]
        assert torch.all(bns[-1].weight == 0) and all(torch.all(o.weight == 1) for o in bns[:-1])
        for o in b.idconv.modules():
            if isinstance(o, nn.BatchNorm2d): assert torch.all(o.weight == 1)

def test_a_new_block_is_its_shortcut():
    x = torch.randn(2, 64, 8, 8)
    assert torch.equal(XResBlock(1, 64, 64)(x), F.relu(x))
    blk = XResBlock(4, 16, 32, stride=2)
    assert torch.equal(blk(x), F.relu(blk.idconv(blk.pool(x)))) and blk(x).shape == (2, 128, 4, 4)

def test_init_is_kaiming_with_zero_biases():
    torch.manual_seed(0)
    m = xresnet50(n_out=10)
    w = m[4][0].convs[1][0].weight  # a 3×3 conv of 64 channels: fan_in 576
    assert w.std().item() == pytest.approx((2/576)**0.5, rel=0.05)
    assert torch.all(m[-1].bias == 0) and m[-1].weight.std().item() == pytest.approx((2/2048)**0.5, rel=0.1)
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv2d))  # batch norm follows every conv

def test_init_cnn_zeroes_biases_and_leaves_norms():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 2))
    nn.init.constant_(m[1].weight, 0.5)
    assert init_cnn(m) is m
    assert torch.all(m[0].bias == 0) and torch.all(m[2].bias == 0) and torch.all(m[1].weight == 0.5)

def test_options_p_act_cls_widen():
    m = xresnet18(p=0.5, act_cls=nn.SiLU, widen=0.5, n_out=3)
    assert m[-2].p == 0.5 and m[-1].in_features == 256 and any(isinstance(l, nn.SiLU) for l in m.modules())
    assert not any(isinstance(l, nn.ReLU) for l in m.modules())
    assert m.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 3)

def test_slices_are_models():
    "An `nn.Sequential`, so `m[:-3]` is the body (up to the pool), as students cut models."
    body = xresnet18()[:-4].eval()
    assert body(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)

def test_pretrained_is_refused_and_unknown_options_fail():
    with pytest.raises(NotImplementedError, match='no pretrained'): xresnet34(pretrained=True)
    assert n_params(xresnet18(pretrained=False)) == 11_708_744
    with pytest.raises(TypeError, match="sa"): xresnet18(sa=True)

def test_xresnet_trains_a_step_with_cross_entropy():
    torch.manual_seed(0)
    m = xresnet18(c_in=1, n_out=4)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 4, (8,))
    loss = F.cross_entropy(m(x), y)
    loss.backward(); opt.step()
    assert torch.isfinite(loss) and m[4][0].convs[-1][1].weight.abs().sum() > 0  # the zero γ learns

# ---- fastai's names --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['cnn_learner', 'create_cnn', 'vision_learner'])
def test_fastai_learner_stubs_name_minitrains_way(name):
    f = getattr(mall, name)
    with pytest.raises(NotImplementedError, match=rf"{name} is fastai.*Learner\(xresnet34\(n_out=len\(dls.vocab\)\), dls"):
        f(object(), resnet34, metrics=None, pretrained=False)
    with pytest.raises(NotImplementedError): f()

@pytest.mark.parametrize('n', [18, 34, 50])
def test_torchvision_resnet_stubs_name_xresnet(n):
    with pytest.raises(NotImplementedError, match=rf"resnet{n} is torchvision's.*xresnet{n}\(n_out=\.\.\.\)"):
        getattr(mall, f'resnet{n}')()

def test_stubs_are_exported():
    import minitrain.models as mm
    for name in ('cnn_learner', 'create_cnn', 'vision_learner', 'simple_cnn', 'resnet18', 'resnet34', 'resnet50',
                 'xresnet18', 'xresnet34', 'xresnet50', 'xresnet', 'XResBlock', 'init_cnn'):
        assert name in mm.__all__ and getattr(mall, name) is getattr(mm, name)

def test_simple_cnn_is_fastai_v1s():
    m = simple_cnn((3, 16, 16, 2))
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride, c.bias is not None) for c in convs] == [
        (3, 16, (2, 2), True), (16, 16, (2, 2), True), (16, 2, (2, 2), True)]
    assert not any(isinstance(l, nn.BatchNorm2d) for l in m.modules())
    assert sum(isinstance(l, nn.ReLU) for l in m.modules()) == 3
    assert m(torch.randn(4, 3, 28, 28)).shape == (4, 2) and all(torch.all(c.bias == 0) for c in convs)
    m = simple_cnn((1, 8, 4), kernel_szs=(5, 3), strides=(1, 2), bn=True)
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    assert [(c.kernel_size, c.stride) for c in convs] == [((5, 5), (1, 1)), ((3, 3), (2, 2))]
    assert sum(isinstance(l, nn.BatchNorm2d) for l in m.modules()) == 1  # all but the last
    assert m(torch.randn(2, 1, 12, 12)).shape == (2, 4)

def test_resnets_downsample_first():
    "The course's `resnet` halves the image in its stem (28 → 14 → 7 → 4 → 2, as the cnn ends); `xresnet_small` too."
    from minitrain.models import resnet, xresnet_small, MODELS, create_model, cnn
    x = torch.randn(2, 1, 28, 28)
    assert resnet()(x).shape == xresnet_small()(x).shape == (2, 10) and xresnet_small()[0][0].stride == (2, 2)
    full, pool = resnet()[0]  # resnet's stem: 16 channels at full size, then a 3×3 max pool with stride 2
    assert (full[0].stride, full[0].out_channels, type(pool), pool.kernel_size, pool.stride) == \
        ((1, 1), 16, nn.MaxPool2d, 3, 2)
    m, h = resnet(), x
    shapes = []
    for l in m[:4]: h = l(h); shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 14, 14), (32, 7, 7), (64, 4, 4), (128, 2, 2)]
    m, h, shapes = xresnet_small(), x, []
    for l in m[:4]: h = l(h); shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 14, 14), (32, 7, 7), (64, 4, 4), (128, 2, 2)]
    assert all(isinstance(b, XResBlock) for b in m[1:4]) and all(b.convs[0][0].stride == (2, 2) for b in m[1:4])
    assert all(b.convs[0][0].stride == (2, 2) and b.convs[1][0].stride == (1, 1) for b in resnet()[1:4])  # down_first
    assert ResBlock(8, 16, stride=2).convs[1][0].stride == (2, 2)  # the course's block: unchanged by default
    assert list(MODELS) == ['mlp', 'cnn', 'pool_cnn', 'resnet', 'xresnet'] and isinstance(create_model('xresnet')[1], XResBlock)
    assert xresnet_small(nfs=(8, 16), c_in=3, n_out=4)(torch.randn(1, 3, 32, 32)).shape == (1, 4)

def test_pool_stem_and_pool_cnn():
    "pool_stem halves the image with a 3×3 max pool after a full-size conv; pool_cnn is the cnn behind it, pool first."
    from minitrain.models import pool_stem, pool_cnn, cnn
    x = torch.randn(2, 1, 28, 28)
    paper, first = pool_stem(1, 16), pool_stem(1, 16, pool_first=True)
    assert [type(l) for l in paper[0]] + [type(paper[1])] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert [type(l) for l in first] == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU] and first[0].bias is None
    assert paper(x).shape == first(x).shape == (2, 16, 14, 14) and first[0].stride == (1, 1)
    with torch.no_grad():  # with batch norm's scale positive, pooling first computes the same function
        first.load_state_dict({k.replace('0.0.', '0.').replace('0.1.', '2.'): v for k, v in paper.state_dict().items()})
        paper.eval(); first.eval()
        paper[0][1].running_mean.uniform_(); first[2].running_mean.copy_(paper[0][1].running_mean)
        assert torch.allclose(paper(x), first(x), atol=1e-6)
    m = pool_cnn()
    assert m(x).shape == (2, 10) and sum(p.numel() for p in m.parameters()) == 217_050
    h, shapes = x, []
    for l in m[:4]: h = l(h); shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 14, 14), (48, 7, 7), (96, 4, 4), (192, 2, 2)]
    assert [str(l) for l in m[1:]] == [str(l) for l in cnn((48, 96, 192), c_in=16)]  # the course's cnn after it
    assert pool_cnn((8,), c_in=3, n_out=4)(torch.randn(1, 3, 32, 32)).shape == (1, 4)  # one stage: the stem alone
