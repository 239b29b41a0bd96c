# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
set_seed(0)
tx, ty = torch.randn(48, 1, 4, 4), torch.randint(0, 3, (48,))
tiny_dls = DataLoaders.from_dsets(Dataset(tx[:32], ty[:32]), Dataset(tx[32:], ty[32:]), bs=8, shuffle=False)
def tiny_learner(*cbs, loss_func=F.cross_entropy):
    "A small classifier of 4×4 one-channel 'images' in 3 classes, with the callbacks `cbs`."
    set_seed(0)
    return Learner(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), tiny_dls, loss_func, cbs=[TrainCB(), DeviceCB(), *cbs])

# %% [markdown]
# ### 1. A batch transform: brightness
#
# Write `rand_brightness(x, delta=0.5)`: add to each image of the batch `x` (N×C×H×W) its own random number,
# drawn uniformly from [-delta, delta] (one number per image, the same for all its pixels). Draw them for the
# whole batch at once, on `x`'s device, and leave `x` itself unchanged.

# %% tags=["exercise"]
def rand_brightness(x, delta=0.5):
    "Each image of `x` plus its own random shift in [-delta, delta]."
    raise NotImplementedError

# %% tags=["check"]
with check('rand_brightness'):
    bx = tx[:16].clone()
    set_seed(1)
    res = rand_brightness(bx, delta=0.5)
    assert torch.equal(bx, tx[:16]), "rand_brightness must not change its input in place"
    assert res.shape == bx.shape, f"expected the batch's shape {tuple(bx.shape)}, got {tuple(res.shape)}"
    shift = (res - bx).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6), "expected one shift per image, the same for all its pixels"
    s = shift[:, 0]
    assert (s.abs() <= 0.5 + 1e-6).all(), f"expected shifts within ±0.5, got some of {s.abs().max():.3f}"
    assert len(set(s.tolist())) > 8, "each image should get its own random shift"
    try_learn = tiny_learner(BatchTransformCB(rand_brightness, on_val=False, each=True), SingleBatchCB())
    try_learn.fit(1)  # and it works as a batch transform

# %% [markdown]
# ### 2. Label smoothing by hand
#
# Label smoothing trains against the target `(1 - eps)` on the right class plus `eps/c` spread over all `c`
# classes. Write `smooth_ce(output, target, eps=0.1, reduction='mean')`: build those soft targets with
# `F.one_hot`, take the cross-entropy against them (`-(soft * log_softmax(output)).sum(-1)` per item), and
# reduce by `'mean'`, `'sum'` or `'none'` (one loss per item), so that `NoneReduce` and `MixUpCB` can use it.

# %% tags=["exercise"]
def smooth_ce(output, target, eps=0.1, reduction='mean'):
    "Cross-entropy of `output` against `target` smoothed by `eps`."
    raise NotImplementedError

# %% tags=["check"]
with check('smooth_ce'):
    set_seed(0)
    res, tg = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    for red in ('mean', 'sum', 'none'):
        want = F.cross_entropy(res, tg, label_smoothing=0.2, reduction=red)
        got = smooth_ce(res, tg, eps=0.2, reduction=red)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), f"reduction={red!r}: expected {want}, got {got}"
    assert torch.allclose(smooth_ce(res, tg, eps=0.), F.cross_entropy(res, tg)), "with eps=0 it is the plain cross-entropy"
    tiny_learner(MixUpCB(), SingleBatchCB(), loss_func=smooth_ce).fit(1)  # MixUp needs the per-item losses

# %% [markdown]
# ### 3. A mixing callback
#
# `MixUpCB` blends each image with a random other one by a random weight. Write a simpler, predictable
# cousin: `FixedMixCB(t)`, which in *training* batches only replaces the inputs `x` by `t*x + (1-t)*x.flip(0)`
# (each image blended with the one at the mirrored place in the batch) and the loss by
# `t*loss(preds, y) + (1-t)*loss(preds, y.flip(0))`. Give it an `order` after `BatchTransformCB`'s, as
# `MixUpCB` has. Validation batches stay as they are.

# %% tags=["exercise"]
class FixedMixCB(Callback):
    "Blend each training image with its mirror in the batch by weight `t`, and the two targets' losses the same way."
    order = BatchTransformCB.order + 1
    def __init__(self, t=0.7): self.t = t
    def before_batch(self, learn): raise NotImplementedError
    def after_loss(self, learn): raise NotImplementedError

# %% tags=["check"]
with check('FixedMixCB'):
    try_learn = tiny_learner(FixedMixCB(0.7), SingleBatchCB())
    try_learn.fit(1)  # one training batch: the first 8 items
    x0, y0 = tx[:8], ty[:8]
    assert torch.allclose(try_learn.xb[0], 0.7*x0 + 0.3*x0.flip(0)), "the training inputs should be 0.7*x + 0.3*x.flip(0)"
    want = 0.7*F.cross_entropy(try_learn.preds, y0) + 0.3*F.cross_entropy(try_learn.preds, y0.flip(0))
    assert torch.allclose(try_learn.loss, want), f"expected the mixed loss {want.item():.4f}, got {try_learn.loss.item():.4f}"
    try_preds, _ = try_learn.get_preds()
    with torch.no_grad(): plain_preds = try_learn.model(tx[32:]).softmax(-1)
    assert torch.allclose(try_preds, plain_preds, atol=1e-6), "validation batches (and get_preds) must not be mixed"

# %% [markdown]
# To explore in the notebook above: how does `tta` with `rand_brightness` (exercise 1) compare to the flip?
