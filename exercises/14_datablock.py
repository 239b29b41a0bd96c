# %%
import tempfile
from pathlib import Path
import numpy as np
import torch
from PIL import Image

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8))
label = torch.tensor(1).as_subclass(TensorCategory)

# %% [markdown]
# ### 1. A transform that knows its type
#
# Write `FlipLR`, a `Transform` that mirrors Pillow images left-right (`img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)`)
# and leaves every other type alone, so that on a pair `(image, category)` only the image changes. Its `decodes`
# mirrors the image back. The type annotation of `encodes`' argument says which values it acts on.

# %% tags=["exercise"]
class FlipLR(Transform):
    "Mirror Pillow images left-right; leave other values alone."
    def encodes(self, img): raise NotImplementedError

# %% tags=["check"]
with check('FlipLR'):
    x, y = FlipLR()((img, label))
    want = np.asarray(img)[:, ::-1]
    assert isinstance(x, Image.Image) and np.array_equal(np.asarray(x), want), "the image should be mirrored"
    assert y is label, "the category should be left as it is (annotate encodes' argument with Image.Image)"
    back, _ = FlipLR().decode((x, y))
    assert np.array_equal(np.asarray(back), np.asarray(img)), "decode should mirror the image back"

# %% [markdown]
# ### 2. A vocabulary from a pipeline
#
# Labels often need more than one step. Write `label_pipeline(names)`: a `Pipeline` that takes a file path,
# keeps the part of its file name before the first `_` (`Path(o).name.split('_')[0]`), maps it through the
# dictionary `names`, and categorises it with a `Categorize` whose vocabulary is built by `setup` (not given).
# After `pipe.setup(files)`, `pipe(fn)` is a class index and `pipe.decode(pipe(fn))` the readable name.

# %% tags=["exercise"]
def label_pipeline(names) -> Pipeline:
    "File path -> code before the first `_` -> readable name (`names`) -> class index."
    raise NotImplementedError

# %% tags=["check"]
with check('label_pipeline'):
    names = {'a': 'apple', 'b': 'banana', 'c': 'cherry'}
    files = [Path(f'x/{k}_{i}.jpg') for k in 'cab' for i in range(2)]
    pipe = label_pipeline(names)
    assert isinstance(pipe, Pipeline), f"return a Pipeline, got {type(pipe).__name__}"
    pipe.setup(files)
    got = [int(pipe(f)) for f in files]
    assert got == [2, 2, 0, 0, 1, 1], f"indices in the sorted vocabulary (apple, banana, cherry): expected [2, 2, 0, 0, 1, 1], got {got}"
    assert pipe.decode(pipe(files[0])) == 'cherry', "decode should give the readable name back"
