# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. The best epoch
#
# `MetricsCB.log` holds one dict per epoch and phase, like `{'loss': 0.31, 'epoch': 0, 'train': 'eval'}`.
# Write `best_epoch(log, name='loss')`: the epoch whose *validation* (`'eval'`) entry has the lowest `name`.

# %% tags=["exercise"]
def best_epoch(log, name='loss'):
    "The epoch of the validation entry of `log` with the lowest `name`."
    raise NotImplementedError

# %% tags=["check"]
with check('best_epoch'):
    log = [{'loss': 0.9, 'epoch': 0, 'train': 'train'}, {'loss': 0.5, 'epoch': 0, 'train': 'eval'},
           {'loss': 0.1, 'epoch': 1, 'train': 'train'}, {'loss': 0.4, 'epoch': 1, 'train': 'eval'},
           {'loss': 0.05, 'epoch': 2, 'train': 'train'}, {'loss': 0.6, 'epoch': 2, 'train': 'eval'}]
    assert best_epoch(log) == 1, f"validation losses are 0.5, 0.4, 0.6: expected epoch 1, got {best_epoch(log)} (ignore the training entries)"

# %% [markdown]
# ### 2. Stop when good enough
#
# Write `TargetCB(target)`, which stops the fit (with the right `Cancel...Exception`) at the end of the
# first validation phase whose mean loss is at most `target`. Read the loss from `learn.metrics.log[-1]`
# in `after_epoch`; give `TargetCB` an `order` above `MetricsCB.order` so the entry is there.

# %% tags=["exercise"]
class TargetCB(Callback):
    "Stop the fit once the validation loss is at most `target`."
    def __init__(self, target): self.target = target
    def after_epoch(self, learn): raise NotImplementedError

# %% tags=["check"]
with check('TargetCB'):
    set_seed(0)
    x = torch.randn(64, 2); y = x @ torch.tensor([[2.], [-1.]])
    dls = DataLoaders.from_dsets(Dataset(x, y), Dataset(x, y), bs=16)
    metrics = MetricsCB()
    Learner(nn.Linear(2, 1), dls, F.mse_loss, lr=0.1, cbs=[TrainCB(), metrics, TargetCB(0.05)]).fit(50)
    valid = [d['loss'] for d in metrics.log if d['train'] == 'eval']
    assert valid[-1] <= 0.05, f"the fit should end once the validation loss is at most 0.05; the last is {valid[-1]:.3f}"
    assert all(v > 0.05 for v in valid[:-1]), "stop at the *first* validation loss at or below the target"
    assert len(valid) < 50, "the fit ran all 50 epochs: raise CancelFitException"
