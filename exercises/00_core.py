# %%
import torch

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. Walk a nested batch
#
# A batch is often a tuple or list of tensors, sometimes a dict, sometimes nested. `to_device` walks
# that structure; write `shapes(b)`, which walks it the same way and returns the same structure with each
# tensor replaced by its shape as a tuple: `shapes((torch.zeros(2, 3), [torch.zeros(4)]))` is
# `((2, 3), [(4,)])`. Anything that is not a tensor, tuple, list or dict stays as it is.

# %% tags=["exercise"]
def shapes(b):
    "`b` with every tensor replaced by its shape (a tuple), keeping tuples, lists and dicts."
    raise NotImplementedError

# %% tags=["check"]
with check('shapes'):
    x = torch.zeros(2, 3)
    assert shapes(x) == (2, 3), f"a tensor gives its shape as a tuple; got {shapes(x)!r}"
    got = shapes((x, [torch.zeros(4), 'a'], {'y': torch.zeros(5, 1)}))
    want = ((2, 3), [(4,), 'a'], {'y': (5, 1)})
    assert got == want, f"expected {want!r}, got {got!r}"
    assert type(shapes([x])) is list and type(shapes((x,))) is tuple, "keep lists as lists and tuples as tuples"

# %% [markdown]
# ### 2. The same random numbers twice
#
# Write `draw(seed)`, which returns `torch.randn(3)` after seeding with `set_seed`, so that the same seed
# always gives the same three numbers and different seeds give different ones.

# %% tags=["exercise"]
def draw(seed):
    "Three standard normal numbers that depend only on `seed`."
    raise NotImplementedError

# %% tags=["check"]
with check('draw'):
    a = draw(1); torch.randn(10); b = draw(1)
    assert torch.equal(a, b), "the same seed must give the same numbers, whatever ran in between"
    assert not torch.equal(draw(1), draw(2)), "different seeds should give different numbers"
