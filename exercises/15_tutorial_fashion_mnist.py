# %%
import torch
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
fm_small = load_fashion_mnist(source='embedded')  # the small subset shipped in the package: no download
imgs = fashion_norm(fm_small.x_valid[:4])  # 4 normalised images, 4×1×28×28

# %% [markdown]
# ### 1. A deeper perceptron
#
# `mlp(n_hidden)` has one hidden layer. Write `deep_mlp(hidden=(256, 128))`: an `nn.Sequential` that
# flattens the image, then has a `Linear` and a `ReLU` for each size in `hidden`, and a last `Linear` to the
# 10 classes. `deep_mlp((256,))` is then the same network as `mlp(256)`.

# %% tags=["exercise"]
def deep_mlp(hidden=(256, 128)) -> nn.Sequential:
    "A perceptron for 28×28 images in 10 classes with a hidden layer of each size in `hidden`."
    raise NotImplementedError

# %% tags=["check"]
with check('deep_mlp'):
    net = deep_mlp((64, 32))
    assert isinstance(net, nn.Sequential), f"expected an nn.Sequential, got {type(net).__name__}"
    out = net(imgs)
    assert out.shape == (4, 10), f"expected one score per class for each of the 4 images, (4, 10); got {tuple(out.shape)}"
    lins = [(l.in_features, l.out_features) for l in net if isinstance(l, nn.Linear)]
    assert lins == [(784, 64), (64, 32), (32, 10)], f"expected Linear layers 784→64→32→10, got {lins}"
    assert sum(isinstance(l, nn.ReLU) for l in net) == 2, "expected a ReLU after each hidden Linear (and none after the last)"
    n, n_ref = (sum(p.numel() for p in o.parameters()) for o in (deep_mlp((256,)), mlp(256)))
    assert n == n_ref, f"deep_mlp((256,)) should have as many parameters as mlp(256), {n_ref:,}; got {n:,}"

# %% [markdown]
# ### 2. The CNN with dropout
#
# Dropout zeroes a random fraction `p` of its inputs in training (and scales the others up by 1/(1-p)), and
# does nothing in eval mode. Write `cnn_dropout(p=0.25)`: the tutorial's `cnn()` with an `nn.Dropout(p)`
# just before its last `Linear`, as an `nn.Sequential`. Build it from `cnn()`'s layers rather than copying
# its code.

# %% tags=["exercise"]
def cnn_dropout(p=0.25) -> nn.Sequential:
    "The course's CNN with dropout of probability `p` before the last linear layer."
    raise NotImplementedError

# %% tags=["check"]
with check('cnn_dropout'):
    set_seed(0)
    net = cnn_dropout(0.5)
    assert isinstance(net, nn.Sequential), f"expected an nn.Sequential, got {type(net).__name__}"
    drops = [l for l in net if isinstance(l, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.5, f"expected one nn.Dropout(0.5), got {drops}"
    assert isinstance(net[-1], nn.Linear) and net[-2] is drops[0], "the dropout goes just before the last Linear"
    n, n_ref = sum(p.numel() for p in net.parameters()), sum(p.numel() for p in cnn().parameters())
    assert n == n_ref, f"dropout adds no parameters: expected {n_ref:,} like cnn(), got {n:,}"
    net.eval()
    plain = nn.Sequential(*[l for l in net if not isinstance(l, nn.Dropout)])
    with torch.no_grad(): assert torch.allclose(net(imgs), plain(imgs)), "in eval mode dropout should change nothing"
    net.train()
    with torch.no_grad(): assert not torch.equal(net(imgs), net(imgs)), "in training mode two passes should differ"

# %% [markdown]
# ### 3. A quick subset
#
# To try a model in seconds, train it on a few images first. `FashionMNIST` is a `NamedTuple`, so
# `fm._replace(x_train=...)` gives a copy with some fields changed. Write `subset(fm, n_train, n_valid)`: the
# first `n_train` training and `n_valid` validation images and labels of `fm` (classes and source kept),
# with a `ValueError` if `fm` has fewer images than asked for. `fashion_dls(bs, subset(fm, ...))` then makes
# DataLoaders of it.

# %% tags=["exercise"]
def subset(fm, n_train: int, n_valid: int):
    "The first `n_train` training and `n_valid` validation items of the FashionMNIST `fm`."
    raise NotImplementedError

# %% tags=["check"]
with check('subset'):
    small = subset(fm_small, 256, 64)
    assert isinstance(small, FashionMNIST), f"expected a FashionMNIST (use fm._replace), got {type(small).__name__}"
    sizes = tuple(len(o) for o in small[:4])
    assert sizes == (256, 256, 64, 64), f"expected 256 training and 64 validation images and labels, got {sizes}"
    assert torch.equal(small.x_train, fm_small.x_train[:256]) and torch.equal(small.y_valid, fm_small.y_valid[:64]), "take the first items"
    assert small.classes == fm_small.classes and small.source == fm_small.source, "keep the classes and the source"
    small_dls = fashion_dls(64, small)
    assert (len(small_dls.train), len(small_dls.valid)) == (4, 1), f"expected 4 training batches and 1 validation batch, got {(len(small_dls.train), len(small_dls.valid))}"
    try: subset(fm_small, len(fm_small.x_train) + 1, 10)
    except ValueError: pass
    else: raise AssertionError("asking for more training images than there are should raise a ValueError")

# %% [markdown]
# To explore: train `deep_mlp()` and `cnn_dropout()` for three epochs on `subset(fm, 2048, 512)` with the
# tutorial's `get_learner` and `fit_one_cycle`: which is better, and by how much, than the plain `mlp()` and
# `cnn()`?
