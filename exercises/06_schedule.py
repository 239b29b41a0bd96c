# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. An annealer of your own
#
# `@annealer` turns `f(start, end, pos)` into a factory: `f(start, end)` returns a function of `pos`
# (from 0 at the start of training to 1 at the end). Write `sched_step`, which stays at `start` for the
# first half of training and is `end` from `pos=0.5` on.

# %% tags=["exercise"]
@annealer
def sched_step(start, end, pos):
    "`start` for the first half of training, then `end`."
    raise NotImplementedError

# %% tags=["check"]
with check('sched_step', hints={"required positional argument: 'pos'": "keep `@annealer` on the line above "
                               "`def sched_step`: it makes sched_step(start, end) return a function of pos"}):
    f = sched_step(1., 0.1)
    got = [f(p) for p in (0., 0.3, 0.5, 0.9, 1.)]
    assert got == [1., 1., 0.1, 0.1, 0.1], f"expected [1, 1, 0.1, 0.1, 0.1] at pos 0, .3, .5, .9, 1; got {got}"

# %% [markdown]
# ### 2. Warm up, then cosine
#
# With `combine_scheds`, build `warmup_cos`: linear from 0 to 0.1 over the first 10% of training, then a
# cosine from 0.1 down to 0 for the rest.

# %% tags=["exercise"]
warmup_cos = None  # your schedule here: a function of pos

# %% tags=["check"]
with check('warmup_cos'):
    if warmup_cos is None: raise NotImplementedError
    assert callable(warmup_cos), "warmup_cos must be a function of pos (use combine_scheds)"
    for pos, want in ((0., 0.), (0.05, 0.05), (0.1, 0.1), (0.55, 0.05), (1., 0.)):
        assert abs(warmup_cos(pos) - want) < 1e-6, f"at pos {pos} expected {want}, got {warmup_cos(pos)}"

# %% [markdown]
# ### 3. Watch the learning rate
#
# Write `LRCB`, a callback that appends the learning rate of the first parameter group to `self.lrs`
# at every training batch, *after* `ParamSchedulerCB` has set it. Two ways: a higher `order` than
# `ParamSchedulerCB.order` with `before_batch`, or a later event such as `after_batch`.

# %% tags=["exercise"]
class LRCB(Callback):
    "The learning rate used by every training batch of the last fit."
    def before_fit(self, learn): raise NotImplementedError

# %% tags=["check"]
with check('LRCB'):
    x = torch.randn(32, 2); y = x.sum(1, keepdim=True)
    dls = DataLoaders.from_dsets(Dataset(x, y), Dataset(x, y), bs=8)  # 4 batches per epoch
    cb = LRCB()
    Learner(nn.Linear(2, 1), dls, F.mse_loss, cbs=[TrainCB(), ParamSchedulerCB(lr=sched_lin(0.1, 0.)), cb]).fit(2)
    want = [0.1 * (1 - i/8) for i in range(8)]
    assert len(cb.lrs) == 8, f"expected one lr per training batch (8), got {len(cb.lrs)}"
    assert all(abs(a - b) < 1e-9 for a, b in zip(cb.lrs, want)), f"expected {[round(v, 4) for v in want]}, got {[round(v, 4) for v in cb.lrs]}"
