# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
def grads(model):
    "Copies of the gradients of `model`'s parameters."
    return [p.grad.clone() for p in model.parameters()]

# %% [markdown]
# ### 1. Clip by hand
#
# Write `clip_grads(params, max_norm)`: compute the total L2 norm of all the gradients (the square root of
# the sum of every gradient entry squared); if it is above `max_norm`, scale every gradient by
# `max_norm / norm` in place. Return the norm before clipping, as `GradClipCB` records it.

# %% tags=["exercise"]
def clip_grads(params, max_norm):
    "Scale the gradients of `params` so that their total L2 norm is at most `max_norm`; return the norm before."
    raise NotImplementedError

# %% tags=["check"]
with check('clip_grads'):
    set_seed(0)
    model = nn.Linear(4, 3)
    F.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 3) * 10).backward()
    before = grads(model)
    norm = clip_grads(list(model.parameters()), 0.5)
    mine = grads(model)
    for p, g in zip(model.parameters(), before): p.grad = g.clone()
    ref = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    assert abs(float(norm) - float(ref)) < 1e-5, f"the norm before clipping is {float(ref):.4f}; you returned {float(norm):.4f}"
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(mine, model.parameters())), "the clipped gradients differ from clip_grad_norm_'s"

# %% [markdown]
# ### 2. Accumulate gradients
#
# `GradAccumCB` adds up the gradients of several small batches before one step. Write
# `accumulated_grads(model, x, y, n)`: split `x, y` into `n` equal chunks (`torch.chunk`), run the model
# and `F.mse_loss` on each, and call `backward` on each loss scaled so that the summed gradients equal
# those of one big batch. Return `grads(model)`.

# %% tags=["exercise"]
def accumulated_grads(model, x, y, n):
    "The gradients of the mean-squared loss over `x, y`, accumulated over `n` chunks."
    raise NotImplementedError

# %% tags=["check"]
with check('accumulated_grads'):
    set_seed(0)
    model, x, y = nn.Linear(4, 1), torch.randn(12, 4), torch.randn(12, 1)
    F.mse_loss(model(x), y).backward()
    full = grads(model)
    model.zero_grad()
    mine = accumulated_grads(model, x, y, 3)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mine, full)), "the accumulated gradients differ from one big batch's: did you scale each loss by 1/n?"
