# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
set_seed(0)
tiny_x = torch.randn(64, 3)
tiny_y = tiny_x @ torch.tensor([[1.], [-2.], [0.5]])
tiny_dls = DataLoaders.from_dsets(Dataset(tiny_x[:48], tiny_y[:48]), Dataset(tiny_x[48:], tiny_y[48:]), bs=16)  # 3 training batches, 1 validation batch
def tiny_learner(*cbs): return Learner(nn.Linear(3, 1), tiny_dls, F.mse_loss, lr=0.1, cbs=[TrainCB(), *cbs])

# %% [markdown]
# ### 1. Count the batches
#
# Write `CountCB`, a callback whose `n_train` and `n_valid` count the training and validation batches of
# the last `fit` (reset them in `before_fit`; `learn.training` tells which phase a batch is in).

# %% tags=["exercise"]
class CountCB(Callback):
    "Count the training and validation batches of a fit."
    def before_fit(self, learn): raise NotImplementedError
    def after_batch(self, learn): raise NotImplementedError

# %% tags=["check"]
with check('CountCB'):
    cb = CountCB()
    tiny_learner(cb).fit(2)
    assert (cb.n_train, cb.n_valid) == (6, 2), f"2 epochs of 3 training and 1 validation batches: expected (6, 2), got {(cb.n_train, cb.n_valid)}"
    tiny_learner(cb).fit(1)
    assert (cb.n_train, cb.n_valid) == (3, 1), "reset the counts at the start of each fit"

# %% [markdown]
# ### 2. Stop early
#
# Write `StopAfterCB(n)`, which ends the whole fit after `n` training batches by raising the right
# `Cancel...Exception`. The learner swallows it, so `fit` returns normally.

# %% tags=["exercise"]
class StopAfterCB(Callback):
    "Stop the fit after `n` training batches."
    def __init__(self, n): self.n = n
    def after_batch(self, learn): raise NotImplementedError

# %% tags=["check"]
class _CountCB(Callback):  # counts training batches, so a mistake in your CountCB is not blamed on StopAfterCB
    def before_fit(self, learn): self.n_train = 0
    def after_batch(self, learn): self.n_train += learn.training
with check('StopAfterCB'):
    count = _CountCB()
    tiny_learner(count, StopAfterCB(4)).fit(5)
    assert count.n_train == 4, f"expected 4 training batches, got {count.n_train} (count your own batches, or use learn.epoch and learn.iter)"

# %% [markdown]
# ### 3. Record the losses
#
# Write `LossesCB`, which keeps the training loss of every batch in `self.losses` (a list of floats; use
# `learn.loss.item()`). After a few epochs on this easy problem, the last loss should be far below the first.

# %% tags=["exercise"]
class LossesCB(Callback):
    "The training loss of every batch of the last fit, as floats."
    def before_fit(self, learn): raise NotImplementedError
    def after_loss(self, learn): raise NotImplementedError

# %% tags=["check"]
with check('LossesCB'):
    cb = LossesCB()
    tiny_learner(cb).fit(10)
    assert cb.losses, "no loss was recorded: is your method named after_loss, and does it append learn.loss.item()?"
    assert len(cb.losses) == 30, f"10 epochs of 3 training batches: expected 30 losses, got {len(cb.losses)}" + (
        " (skip validation batches: learn.training)" if len(cb.losses) == 40 else "")
    assert all(isinstance(v, float) for v in cb.losses), "keep plain floats (learn.loss.item())"
    assert cb.losses[-1] < cb.losses[0] / 10, f"the loss should fall: first {cb.losses[0]:.3f}, last {cb.losses[-1]:.3f}"
