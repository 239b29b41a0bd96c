# %%
import torch

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. Sign SGD
#
# A stepper is a plain function of the parameter and the hypers. Write `sign_step`, which moves each
# weight by `lr` against the *sign* of its gradient (`torch.sign`), whatever the gradient's size.

# %% tags=["exercise"]
def sign_step(p, lr, **kwargs):
    "Sign SGD: `p -= lr * sign(p.grad)`."
    raise NotImplementedError

# %% tags=["check"]
with check('sign_step'):
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.tensor([0.5, -20., 0.])
    Optimizer([p], [sign_step], lr=0.1).step()
    assert torch.allclose(p, torch.tensor([0.9, 1.1, 1.0])), f"expected [0.9, 1.1, 1.0], got {p.tolist()}"

# %% [markdown]
# ### 2. A stepper with state
#
# A stepper may return a dict: the optimizer keeps it as the parameter's state and passes it back, by
# name, at the next step. Write `max_grad`, which keeps `max_abs`, the largest absolute gradient seen so
# far for each weight (start from `torch.zeros_like(p.grad)` when there is none yet). It changes no weight.

# %% tags=["exercise"]
def max_grad(p, max_abs=None, **kwargs):
    "Keep `max_abs`, the elementwise largest `abs(p.grad)` seen so far."
    raise NotImplementedError

# %% tags=["check"]
with check('max_grad'):
    p = torch.ones(2, requires_grad=True)
    opt = Optimizer([p], [max_grad, sgd_step], lr=0.)
    for g in ([1., -3.], [-2., 1.]):
        p.grad = torch.tensor(g); opt.step()
    assert 'max_abs' in opt.state[p], "return {'max_abs': ...} so the optimizer keeps it"
    assert torch.equal(opt.state[p]['max_abs'], torch.tensor([2., 3.])), f"expected [2., 3.], got {opt.state[p]['max_abs'].tolist()}"

# %% [markdown]
# ### 3. Put steppers together
#
# Write `SignSGDW(params, lr, wd=0.)`: an `Optimizer` that applies decoupled weight decay
# (`weight_decay`) and then your `sign_step`.

# %% tags=["exercise"]
def SignSGDW(params, lr, wd=0.):
    "Sign SGD with decoupled weight decay."
    raise NotImplementedError

# %% tags=["check"]
def _sign_step(p, lr, **kwargs): p.sub_(lr * p.grad.sign())  # a working sign_step, so a mistake in yours is not blamed here
with check('SignSGDW', using={'sign_step': _sign_step}):
    p = torch.ones(2, requires_grad=True)
    p.grad = torch.tensor([1., -1.])
    SignSGDW([p], lr=0.1, wd=0.5).step()
    assert torch.allclose(p.detach(), torch.tensor([0.85, 1.05])), f"expected [0.85, 1.05] (decay first, then the sign step), got {p.tolist()}"
