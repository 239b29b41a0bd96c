# Solutions to the "Try it" exercises of nbs/03_optimizer.ipynb, one cell per exercise, in order.
# %%
def sign_step(p, lr, **kwargs):
    "Sign SGD: `p -= lr * sign(p.grad)`."
    p.add_(torch.sign(p.grad), alpha=-lr)

# %%
def max_grad(p, max_abs=None, **kwargs):
    "Keep `max_abs`, the elementwise largest `abs(p.grad)` seen so far."
    if max_abs is None: max_abs = torch.zeros_like(p.grad)
    return {'max_abs': torch.maximum(max_abs, p.grad.abs())}

# %%
def SignSGDW(params, lr, wd=0.):
    "Sign SGD with decoupled weight decay."
    return Optimizer(params, [weight_decay, sign_step], lr=lr, wd=wd)
