# %%
import random
from pathlib import Path
import numpy as np
import torch
from PIL import Image, ImageOps

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
pets = [Path('images')/f for f in ('great_pyrenees_173.jpg', 'Bengal_12.jpg', 'staffordshire_bull_terrier_3.jpg',
                                   'Bengal_190.jpg', 'yorkshire_terrier_80.jpg', 'great_pyrenees_20.jpg')]

# %% [markdown]
# ### 1. Labels from file names
#
# Not every dataset keeps its classes in folders. In the Oxford-IIIT Pets images of
# [fastbook's chapter 5](https://github.com/fastai/fastbook/blob/master/05_pet_breeds.ipynb), the
# class is in the file name: `great_pyrenees_173.jpg` is a `great_pyrenees`. Write `name_label(o)`, the label
# of the file `o` (a path or a string): its name without the extension, up to the last `_`. A name with no
# `_` has no label: raise a `ValueError` that names the file. (`from_folder(..., label_func=name_label)`
# would then use it.)

# %% tags=["exercise"]
def name_label(o) -> str:
    "The class in the file name of `o`: the part before the last `_`."
    raise NotImplementedError

# %% tags=["check"]
with check('name_label'):
    res = [name_label(f) for f in pets]
    want = ['great_pyrenees', 'Bengal', 'staffordshire_bull_terrier', 'Bengal', 'yorkshire_terrier', 'great_pyrenees']
    assert res == want, f"expected {want}, got {res}"
    assert name_label('a/b_c/cat_1.png') == 'cat', "only the file name counts, not the folders"
    try: name_label('images/cat.jpg')
    except ValueError as e: assert 'cat.jpg' in str(e), f"the error should name the file; it says: {e}"
    else: raise AssertionError("a file name without '_' should raise a ValueError")

# %% [markdown]
# ### 2. A splitter of your own
#
# A splitter takes the list of items and returns `(train_indices, valid_indices)`, two lists of ints in
# increasing order, like `GrandparentSplitter` and `RandomSplitter`. Write `FuncSplitter(func)` ([fastai has
# one](https://docs.fast.ai/data.transforms.html#funcsplitter)): an item goes to validation when `func(item)` is true. As the others do, raise a `ValueError` when
# either split would be empty.

# %% tags=["exercise"]
class FuncSplitter:
    "Split items by `func`: validation for those where `func(item)` is true, training for the rest."
    def __init__(self, func): self.func = func
    def __call__(self, items) -> tuple[list[int], list[int]]: raise NotImplementedError

# %% tags=["check"]
with check('FuncSplitter'):
    res = FuncSplitter(lambda o: o.stem.endswith('0'))(pets)  # the files whose number ends in 0
    want = ([0, 1, 2], [3, 4, 5])
    assert isinstance(res, tuple) and len(res) == 2, f"expected a pair (train_indices, valid_indices), got {res!r}"
    assert tuple(map(list, res)) == want, f"expected {want} (the items whose number ends in 0 are 3, 4 and 5), got {res}"
    assert all(isinstance(i, int) for s in res for i in s), "return lists of plain ints"
    for f in (lambda o: True, lambda o: False):
        try: FuncSplitter(f)(pets)
        except ValueError: pass
        else: raise AssertionError("an empty training or validation split should raise a ValueError")

# %% [markdown]
# ### 3. An item transform with a validation version
#
# An item transform is a function of a Pillow image; if it has a `valid` method, `Pipeline.valid` (used for
# the validation set) calls that instead. Write `RandomHFlip(p=0.5)`: in training it mirrors the image
# left-right (`ImageOps.mirror`) with probability `p`, drawing from Python's `random` (so `SeededDataLoader`
# makes the same batches with any number of workers); for validation it returns the image unchanged.

# %% tags=["exercise"]
class RandomHFlip:
    "Mirror the image left-right with probability `p` in training; leave it as it is for validation."
    def __init__(self, p=0.5): self.p = p
    def __call__(self, img): raise NotImplementedError
    def valid(self, img): raise NotImplementedError

# %% tags=["check"]
with check('RandomHFlip'):
    img = Image.fromarray(np.arange(4*6*3, dtype=np.uint8).reshape(4, 6, 3))
    mirror = np.asarray(ImageOps.mirror(img))
    assert np.array_equal(np.asarray(RandomHFlip(1.)(img)), mirror), "with p=1 every image should be mirrored"
    assert np.array_equal(np.asarray(RandomHFlip(0.)(img)), np.asarray(img)), "with p=0 no image should be mirrored"
    flips = []
    for k in range(40):
        with seeded(k): flips.append(np.array_equal(np.asarray(RandomHFlip()(img)), mirror))
    assert 5 < sum(flips) < 35, f"with p=0.5, expected about half of 40 images mirrored, got {sum(flips)}"
    with seeded(3): a = np.asarray(RandomHFlip()(img))
    with seeded(3): b = np.asarray(RandomHFlip()(img))
    assert np.array_equal(a, b), "draw from Python's `random`, so that a seed gives the same flips"
    pipe = Pipeline([RandomHFlip(1.), ToTensor()])
    assert torch.equal(pipe(img), ToTensor()(ImageOps.mirror(img))), "in a Pipeline, training mirrors (p=1)"
    assert torch.equal(pipe.valid(img), ToTensor()(img)), "Pipeline.valid must leave the image unchanged"
