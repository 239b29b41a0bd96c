# %%
import numpy as np
import torch

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. Read an IDX header by hand
#
# An IDX file starts with four bytes: two zeros, a type code (`0x08` for unsigned bytes) and the number
# of dimensions; then each dimension as a big-endian 32-bit integer. Write `idx_header(data)`, which
# returns `(type_code, dims)` for the bytes `data`, e.g. `(8, (2, 3))` for a 2×3 array of `uint8`.
# (`int.from_bytes(chunk, 'big')` turns four bytes into an integer.)

# %% tags=["exercise"]
def idx_header(data: bytes):
    "The type code and the dimensions (a tuple) in the header of the IDX bytes `data`."
    raise NotImplementedError

# %% tags=["check"]
with check('idx_header'):
    for arr in (np.zeros((2, 3), 'u1'), np.zeros((5, 28, 28), 'u1'), np.zeros(7, '>i4')):
        got, want = idx_header(idx_bytes(arr)), (next(k for k, v in IDX_DTYPES.items() if v == arr.dtype), arr.shape)
        assert got == want, f"for an array {arr.dtype} {arr.shape} expected {want}, got {got}"

# %% [markdown]
# ### 2. How many of each class?
#
# Write `class_counts(y)` for a tensor of labels `y`: a dict from each name in `FASHION_CLASSES` to the
# number of labels of that class (0 for a class that does not appear), in the order of `FASHION_CLASSES`.

# %% tags=["exercise"]
def class_counts(y):
    "How many labels of each Fashion-MNIST class `y` holds, by class name."
    raise NotImplementedError

# %% tags=["check"]
with check('class_counts'):
    got = class_counts(torch.tensor([0, 3, 3, 9]))
    assert list(got) == list(FASHION_CLASSES), "use every name in FASHION_CLASSES, in order, as the keys"
    want = [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert [int(v) for v in got.values()] == want, f"expected counts {want}, got {list(got.values())}"
