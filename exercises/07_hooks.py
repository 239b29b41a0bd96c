# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
set_seed(0)
tx, ty = torch.randn(64, 8), torch.randint(0, 2, (64,))
tiny_dls = DataLoaders.from_dsets(Dataset(tx[:48], ty[:48]), Dataset(tx[48:], ty[48:]), bs=16, shuffle=False)  # 3 training batches, 1 validation batch
def tiny_model():
    set_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
def tiny_fit(net, *cbs):
    "One epoch at learning rate 0 (the weights stay as they are, so the check can recompute what the hooks saw)."
    Learner(net, tiny_dls, F.cross_entropy, lr=0., cbs=[TrainCB(), *cbs]).fit(1)

# %% [markdown]
# ### 1. A hook that records shapes
#
# A hook function takes `(hook, module, input, output)`. Write `record_shape`, which appends the shape of
# `output` (as a tuple) to a list `hook.shapes` (create the list the first time, as `append_stats` did with
# `hook.stats`). The check hooks it on every layer of a model with `Hooks` and runs one batch.

# %% tags=["exercise"]
def record_shape(hook, mod, inp, outp):
    "Append the shape of `outp` to `hook.shapes`."
    raise NotImplementedError

# %% tags=["check"]
with check('record_shape'):
    net = tiny_model()
    with Hooks(net, record_shape) as hs:
        net(tx[:5]); net(tx[:3])
        got = [h.shapes for h in hs]
    want = [[(5, 16), (3, 16)]]*4 + [[(5, 2), (3, 2)]]
    assert got == want, f"expected the shapes {want}, got {got}"
    assert not any(m._forward_hooks for m in net.modules()), "the hooks should be gone after the `with` block"

# %% [markdown]
# ### 2. How many ReLUs are dead?
#
# Write the hook function `zero_frac`, which appends to `hook.zeros` the fraction of `output`'s values that
# are exactly 0 (a float: `.item()`). With `HooksCallback(zero_frac, mod_filter=nn.ReLU)` it then runs on
# every ReLU, in training batches only.

# %% tags=["exercise"]
def zero_frac(hook, mod, inp, outp):
    "Append the fraction of `outp`'s values that are 0 to `hook.zeros`."
    raise NotImplementedError

# %% tags=["check"]
with check('zero_frac'):
    net, zc = tiny_model(), HooksCallback(zero_frac, mod_filter=nn.ReLU)
    tiny_fit(net, zc)
    got = {h.name: h.zeros for h in zc}
    want = {'1': [], '3': []}
    for xb, _ in tiny_dls.train:
        a1 = net[:2](xb); a3 = net[2:4](a1)
        want['1'].append((a1 == 0).float().mean().item()); want['3'].append((a3 == 0).float().mean().item())
    assert set(got) == set(want), f"expected one hook per ReLU, named {sorted(want)}; got {sorted(got)}"
    for k in want:
        assert len(got[k]) == 3, f"layer {k}: expected one value per training batch (3), got {len(got[k])}"
        assert all(isinstance(v, float) for v in got[k]), f"layer {k}: keep plain floats (.item()), got {got[k]}"
        assert all(abs(a - b) < 1e-6 for a, b in zip(got[k], want[k])), f"layer {k}: expected {want[k]}, got {got[k]}"

# %% [markdown]
# ### 3. A `HooksCallback` of your own
#
# `ActivationStats` is a `HooksCallback` with its own hook function and its own events. Write `MaxActCB`,
# a `HooksCallback` on the `nn.Linear` layers that keeps, in `self.maxes`, the largest absolute output
# each layer produced in the training batches of the last fit: a dict from the hook's name (`h.name`) to a
# float. Hint: `super().__init__(hookfunc, mod_filter)`, and a hook function that updates `hook.max`.

# %% tags=["exercise"]
class MaxActCB(HooksCallback):
    "The largest |output| of each `nn.Linear` layer over the training batches, in `self.maxes` by layer name."
    def __init__(self): raise NotImplementedError

# %% tags=["check"]
with check('MaxActCB'):
    net, cb = tiny_model(), MaxActCB()
    tiny_fit(net, cb)
    want = {'0': 0., '2': 0., '4': 0.}
    for xb, _ in tiny_dls.train:
        for i in (0, 2, 4): want[str(i)] = max(want[str(i)], net[:i+1](xb).abs().max().item())
    got = getattr(cb, 'maxes', None)
    assert isinstance(got, dict), f"expected self.maxes to be a dict after fit, got {got!r}"
    assert set(got) == set(want), f"expected one entry per Linear layer, named {sorted(want)}; got {sorted(got)}"
    assert all(abs(float(got[k]) - v) < 1e-5 for k, v in want.items()), f"expected {want}, got {got}"
    assert not any(m._forward_hooks for m in net.modules()), "HooksCallback removes its hooks at the end of fit"

# %% [markdown]
# To explore in the notebook above: hook `nn.ReLU` instead of `nn.Conv2d` in `ActivationStats`: what does
# the dead chart say now? Train at `lr=0.1` instead of 0.6 and compare the colourful dimension plots. The
# fix, good initialisation and normalisation, is the next notebook, `08_init`.
