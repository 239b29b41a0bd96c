# %%
import torch

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
ds = Dataset(torch.arange(10.), torch.arange(10) % 2)
seqs = Dataset([torch.arange(1., n + 1) for n in (3, 1, 4, 2)], torch.tensor([0, 1, 0, 1]))  # inputs of 4 lengths

# %% [markdown]
# ### 1. A collate that pads
#
# `collate` refuses items whose tensors differ in shape, and its error says what to do: pass a
# `collate_fn` that pads. Write `pad_collate(b)` for `(x, y)` pairs whose inputs `x` are 1-D tensors of
# different lengths: it returns `(xs, ys)`, where `xs` stacks the inputs, each padded with zeros at
# its end to the length of the longest one in the batch, and `ys` stacks the targets.

# %% tags=["exercise"]
def pad_collate(b):
    "A list of `(x, y)` pairs with 1-D inputs of any length as `(xs, ys)`: the inputs zero-padded to the longest."
    raise NotImplementedError

# %% tags=["check"]
with check('pad_collate'):
    xs, ys = pad_collate([seqs[i] for i in (0, 1)])
    assert torch.equal(xs, torch.tensor([[1., 2., 3.], [1., 0., 0.]])), f"expected [[1, 2, 3], [1, 0, 0]], got {xs}"
    assert torch.equal(ys, torch.tensor([0, 1])), f"expected the targets [0, 1], got {ys}"
    dl = DataLoader(seqs, bs=2, collate_fn=pad_collate)
    shapes = [tuple(x.shape) for x, y in dl]
    assert shapes == [(2, 3), (2, 4)], f"each batch pads to its own longest input: expected (2, 3) and (2, 4), got {shapes}"

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
with check('ReverseSampler', hints={"'list' object": "indices() returns a 1-D tensor of indices, not a list: "
                                                   "torch.arange counts down with a step of -1"}):
    dl = DataLoader(ds, BatchSampler(ReverseSampler(ds), 3), collate_fn=collate)
    got = torch.cat([x for x, y in dl])
    assert torch.equal(got, torch.arange(9., -1., -1.)), f"expected 9, 8, ..., 0, got {got.tolist()}"
    assert list(ReverseSampler(Dataset(torch.zeros(3), torch.zeros(3)))) == [2, 1, 0], "iterating the sampler should give 2, 1, 0 for 3 items"
