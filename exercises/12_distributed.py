# %%
import torch

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. Shard the indices
#
# Each of `world_size` processes trains on its own shard: the indices `rank, rank + world_size,
# rank + 2*world_size, ...` of `range(n)`. So that every rank runs the same number of batches, the order
# is first repeated until its length is a multiple of `world_size`. Write `shard(n, rank, world_size)`
# (a list of ints), which should match `ShardedSampler` without shuffling.

# %% tags=["exercise"]
def shard(n, rank, world_size):
    "Rank `rank`'s indices of `range(n)` split over `world_size` processes, padded to equal length."
    raise NotImplementedError

# %% tags=["check"]
with check('shard'):
    assert shard(10, 1, 4) == [1, 5, 9], f"expected [1, 5, 9], got {shard(10, 1, 4)}"
    assert shard(10, 3, 4) == [3, 7, 1], f"the order wraps around to pad: expected [3, 7, 1], got {shard(10, 3, 4)}"
    for n, ws in ((7, 3), (12, 4), (2, 5)):
        ds = Dataset(torch.zeros(n), torch.zeros(n))
        for r in range(ws):
            want = ShardedSampler(ds, r, ws).indices().tolist()
            assert shard(n, r, ws) == want, f"n={n}, rank {r} of {ws}: expected {want}, got {shard(n, r, ws)}"

# %% [markdown]
# ### 2. Average the gradients
#
# After `backward`, `DistributedDataParallel` all-reduces the gradients: every rank ends up with the mean
# of all the ranks' gradients. Write `all_reduce_mean(tensors)`, given one tensor per rank, returning the
# list of what each rank holds afterwards (new tensors; leave the inputs unchanged).

# %% tags=["exercise"]
def all_reduce_mean(tensors):
    "What each rank holds after averaging `tensors` (one per rank) across ranks."
    raise NotImplementedError

# %% tags=["check"]
with check('all_reduce_mean'):
    ts = [torch.tensor([1., 2.]), torch.tensor([3., 4.]), torch.tensor([5., 0.])]
    out = all_reduce_mean(ts)
    assert len(out) == 3 and all(torch.equal(o, torch.tensor([3., 2.])) for o in out), f"every rank should hold [3., 2.], got {out}"
    assert torch.equal(ts[0], torch.tensor([1., 2.])), "leave the inputs unchanged"
