# Solutions to the "Try it" exercises of nbs/10_accel.ipynb, one cell per exercise, in order.
# %%
def clip_grads(params, max_norm):
    "Scale the gradients of `params` so that their total L2 norm is at most `max_norm`; return the norm before."
    gs = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum((g**2).sum() for g in gs))
    if norm > max_norm:
        for g in gs: g.mul_(max_norm / norm)
    return norm

# %%
def accumulated_grads(model, x, y, n):
    "The gradients of the mean-squared loss over `x, y`, accumulated over `n` chunks."
    for xb, yb in zip(torch.chunk(x, n), torch.chunk(y, n)):
        (F.mse_loss(model(xb), yb) / n).backward()
    return grads(model)
