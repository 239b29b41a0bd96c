# %%
import math
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
def deep_relu_net(depth=30, n=100):
    "`depth` linear layers of `n` units, each followed by a ReLU."
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(n, n), nn.ReLU())])

# %% [markdown]
# ### 1. Kaiming init from scratch
#
# Write `kaiming_init(m)` for `model.apply`: for an `nn.Linear` or `nn.Conv2d`, draw the weights from a
# normal distribution of mean 0 and std $\sqrt{2/\text{fan\_in}}$, where fan_in is the number of inputs of one
# output unit (`m.weight[0].numel()`: in features, or in channels × kernel height × width), and set the bias
# to 0; leave other modules alone. Do it with tensor operations under `torch.no_grad()` (not `nn.init`).

# %% tags=["exercise"]
def kaiming_init(m: nn.Module):
    "Kaiming-normal weights (std √(2/fan_in)) and zero bias for linear and conv layers."
    raise NotImplementedError

# %% tags=["check"]
with check('kaiming_init'):
    set_seed(0)
    cv = nn.Conv2d(16, 64, 3).apply(kaiming_init)
    want = math.sqrt(2 / (16*3*3))
    assert abs(cv.weight.std().item() - want) / want < 0.05, f"conv weights: expected std {want:.4f}, got {cv.weight.std().item():.4f}"
    assert abs(cv.weight.mean().item()) < 0.01 and (cv.bias == 0).all(), "expected mean-0 weights and zero biases"
    bn1 = nn.BatchNorm1d(4); w = bn1.weight.clone(); bn1.apply(kaiming_init)
    assert torch.equal(bn1.weight, w), "other modules (here a BatchNorm) must be left as they are"
    set_seed(0)
    net, inp = deep_relu_net().apply(kaiming_init), torch.randn(256, 100)
    with torch.no_grad(): s = net(inp).std().item()
    assert 0.2 < s < 5, f"after 30 ReLU layers the activations should keep a std near 1; got {s:.3g}"

# %% [markdown]
# ### 2. Measure the activations with hooks
#
# Write `layer_stds(model, xb, mod_filter)`: run `model` once on `xb` (no gradients) and return the list of
# the standard deviations (floats) of the outputs of the modules that `mod_filter` picks, in model order.
# Use `find_modules(model, mod_filter)` and `Hooks`, and remove the hooks afterwards.

# %% tags=["exercise"]
def layer_stds(model, xb, mod_filter) -> list[float]:
    "The std of the output of each module of `model` that `mod_filter` picks, for one pass of `xb`."
    raise NotImplementedError

# %% tags=["check"]
with check('layer_stds'):
    set_seed(0)
    net, inp = deep_relu_net(depth=4, n=32), torch.randn(64, 32)
    got = layer_stds(net, inp, nn.ReLU)
    want, a = [], inp
    with torch.no_grad():
        for i in range(0, 8, 2):
            a = net[i+1](net[i](a)); want.append(a.std().item())
    assert isinstance(got, list) and len(got) == 4, f"expected a list of 4 stds (one per ReLU), got {got!r}"
    assert all(abs(float(g) - w) < 1e-5 for g, w in zip(got, want)), f"expected {[round(w, 4) for w in want]}, got {got}"
    assert not any(m._forward_hooks for m in net.modules()), "remove the hooks (a `with Hooks(...)` block does it)"
    set_seed(0)
    plain_stds = layer_stds(deep_relu_net(), torch.randn(256, 100), nn.ReLU)
    set_seed(0)
    kaiming_stds = layer_stds(deep_relu_net().apply(init_weights), torch.randn(256, 100), nn.ReLU)
    print(f"std after the last ReLU: PyTorch's default init {plain_stds[-1]:.2g}, Kaiming {kaiming_stds[-1]:.2g}")

# %% [markdown]
# ### 3. RMSNorm
#
# `LayerNorm` subtracts each item's mean and divides by its std. RMSNorm (used by many language models) only
# divides by the root mean square over the last dimension: $x / \sqrt{\text{mean}(x^2) + \epsilon}$, then
# multiplies by a learnt `weight` (an `nn.Parameter` of `nf` ones at first). Write `RMSNorm(nf, eps=1e-5)`; the check compares it with
# [`torch.nn.RMSNorm`](https://docs.pytorch.org/docs/stable/generated/torch.nn.RMSNorm.html).

# %% tags=["exercise"]
class RMSNorm(nn.Module):
    "Divide each item by the root mean square of its last dimension (`nf` values), then multiply by `weight`."
    def __init__(self, nf: int, eps: float = 1e-5):
        super().__init__()
        raise NotImplementedError
    def forward(self, x): raise NotImplementedError

# %% tags=["check"]
with check('RMSNorm'):
    set_seed(0)
    xr = torch.randn(4, 3, 8) * 5 + 2
    m, ref_rms = RMSNorm(8), nn.RMSNorm(8, eps=1e-5)
    assert isinstance(getattr(m, 'weight', None), nn.Parameter) and m.weight.shape == (8,), "expected a `weight` parameter of 8 values"
    yr = m(xr)
    assert yr.shape == xr.shape, f"expected the shape of the input {tuple(xr.shape)}, got {tuple(yr.shape)}"
    assert torch.allclose(yr, ref_rms(xr), atol=1e-5), "the output differs from torch.nn.RMSNorm's"
    assert torch.allclose(yr.square().mean(-1), torch.ones(4, 3), atol=1e-3), "each item should come out with a mean square of 1"
    with torch.no_grad(): m.weight.fill_(2.); ref_rms.weight.fill_(2.)
    assert torch.allclose(m(xr), ref_rms(xr), atol=1e-5), "multiply by `weight` at the end"

# %% [markdown]
# To explore in the notebook above: replace `BatchNorm` by `LayerNorm`-style normalisation
# (`lambda nf: nn.GroupNorm(1, nf)` normalises each item over channels, height and width) in `fixed_cnn`:
# how close does it get? Use `lsuv_init` instead of `init_weights` with plain `GeneralRelu` and no norm: how
# high can the learning rate go?
