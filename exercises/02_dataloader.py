# %%
import torch
from minitrain.all import *

# %%
ds = Dataset(torch.arange(10.), torch.arange(10) % 2)

# %% [markdown]
# ### 1. Your own collate
#
# A batch sampler hands the data loader a list of indices, and `ds[i]` gives an `(x, y)` pair for each.
# Write `my_collate(b)` which turns a list of pairs into one pair `(xs, ys)` of stacked tensors, as
# `collate` does for this simple case.

# %% tags=["exercise"]
def my_collate(b):
    "A list of `(x, y)` pairs as one pair of stacked tensors."
    raise NotImplementedError

# %% tags=["check"]
with check('my_collate'):
    b = [ds[i] for i in (3, 1, 4)]
    xs, ys = my_collate(b)
    assert torch.equal(xs, torch.tensor([3., 1., 4.])) and torch.equal(ys, torch.tensor([1, 1, 0])), f"got {xs}, {ys}"
    dl = DataLoader(ds, BatchSampler(Sampler(ds), 4), collate_fn=my_collate)
    assert [len(x) for x, y in dl] == [4, 4, 2], "a DataLoader using my_collate should give batches of 4, 4 and 2"

# %% [markdown]
# ### 2. A sampler of your own
#
# Write `ReverseSampler`, a `Sampler` whose `indices()` go from the last item to the first, so that a
# `DataLoader` built on it gives the data backwards.

# %% tags=["exercise"]
class ReverseSampler(Sampler):
    "The indices of `ds` from last to first."
    def indices(self):
        raise NotImplementedError

# %% tags=["check"]
with check('ReverseSampler'):
    dl = DataLoader(ds, BatchSampler(ReverseSampler(ds), 3), collate_fn=collate)
    got = torch.cat([x for x, y in dl])
    assert torch.equal(got, torch.arange(9., -1., -1.)), f"expected 9, 8, ..., 0, got {got.tolist()}"
    assert list(ReverseSampler(Dataset(torch.zeros(3), torch.zeros(3)))) == [2, 1, 0], "iterating the sampler should give 2, 1, 0 for 3 items"
