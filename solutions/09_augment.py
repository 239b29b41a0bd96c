# Solutions to the "Try it" exercises of nbs/09_augment.ipynb, one cell per exercise, in order.
# %%
def rand_brightness(x, delta=0.5):
    "Each image of `x` plus its own random shift in [-delta, delta]."
    shift = torch.empty(len(x), device=x.device, dtype=x.dtype).uniform_(-delta, delta)
    return x + shift.view(-1, *[1]*(x.ndim - 1))

# %%
def smooth_ce(output, target, eps=0.1, reduction='mean'):
    "Cross-entropy of `output` against `target` smoothed by `eps`."
    c = output.shape[-1]
    soft = F.one_hot(target, c).float() * (1 - eps) + eps / c
    loss = -(soft * F.log_softmax(output, dim=-1)).sum(-1)
    return {'mean': loss.mean, 'sum': loss.sum, 'none': lambda: loss}[reduction]()

# %%
class FixedMixCB(Callback):
    "Blend each training image with its mirror in the batch by weight `t`, and the two targets' losses the same way."
    order = BatchTransformCB.order + 1
    def __init__(self, t=0.7): self.t = t
    def before_batch(self, learn):
        if not learn.training: return
        (x,), (self.y,) = learn.xb, learn.yb
        learn.xb = self.t*x + (1 - self.t)*x.flip(0)
    def after_loss(self, learn):
        if not learn.training: return
        lf = learn.loss_func
        learn.loss = self.t*lf(learn.preds, self.y) + (1 - self.t)*lf(learn.preds, self.y.flip(0))
