# %%
import tempfile
from pathlib import Path
import numpy as np
import torch
from PIL import Image

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
def write_tiny_folder(root, n_train=6, n_valid=2, seed=0):
    "A tiny Imagenette-style folder: class codes as folder names under `train/` and `val/`, random-colour JPEGs."
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('val', n_valid)):
        for code in ('n01440764', 'n03028079'):
            (root/split/code).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                a = rng.integers(0, 256, (int(rng.integers(16, 33)), int(rng.integers(16, 33)), 3), dtype=np.uint8)
                Image.fromarray(a).save(root/split/code/f'{code}_{k}.JPEG')
    return root

ex_tmp = tempfile.TemporaryDirectory()  # the exercises' own folder, removed by its last cell
tiny = write_tiny_folder(Path(ex_tmp.name)/'tiny')
tiny_labels = {'n01440764': 'tench', 'n03028079': 'church'}

# %% [markdown]
# ### 1. A label function with a clear error
#
# The tutorial labels an image with `lbl_dict[parent_label(fn)]`. A file in a folder the dictionary does not
# know then fails with a bare `KeyError: 'n0…'`. Write `make_label_func(lbl_dict)`: it returns a function of a
# file that gives the readable label, and for an unknown folder raises a `KeyError` whose message names the
# file and the folder, and says which codes the dictionary knows.

# %% tags=["exercise"]
def make_label_func(lbl_dict):
    "A function of a file: the readable label of its folder's code, by `lbl_dict`; a clear KeyError for unknown codes."
    raise NotImplementedError

# %% tags=["check"]
with check('make_label_func'):
    f = make_label_func(tiny_labels)
    files = get_image_files(tiny)
    got = sorted({f(o) for o in files})
    assert got == ['church', 'tench'], f"expected the labels ['church', 'tench'], got {got}"
    try: f(tiny/'train'/'n99999999'/'x.JPEG')
    except KeyError as e:
        msg = str(e)
        assert 'x.JPEG' in msg and 'n99999999' in msg, f"the error should name the file and its folder; it says: {msg}"
        assert 'n01440764' in msg, f"the error should list the codes the dictionary knows; it says: {msg}"
    else: raise AssertionError("an unknown folder should raise a KeyError")

# %% [markdown]
# ### 2. A random split with the data block API
#
# Many folders of photos have no `val/` folder. Write `random_split_dls(path, seed)` with a `DataBlock`, as the
# tutorial builds one: DataLoaders of only the images under `path/train`, a random 25% of them for validation
# (`RandomSplitter(valid_pct=..., seed=...)` as the `splitter`), labelled by their folder (`parent_label`: the
# code is fine as a label here), 16×16 `RandomResizedCrop`s, batches of 4. The same seed must give the same
# validation files.

# %% tags=["exercise"]
def random_split_dls(path, seed=0):
    "DataLoaders of `path/train` with a random 25% for validation, 16×16 crops, batches of 4."
    raise NotImplementedError

# %% tags=["check"]
with check('random_split_dls'):
    d1, d2, d3 = random_split_dls(tiny, seed=0), random_split_dls(tiny, seed=0), random_split_dls(tiny, seed=1)
    n_t, n_v = len(d1.train.ds), len(d1.valid.ds)
    assert (n_t, n_v) == (9, 3), f"12 training images, 25% of them for validation: expected 9 and 3, got {n_t} and {n_v}"
    assert d1.valid.ds.items == d2.valid.ds.items, "the same seed should give the same validation files"
    assert d1.valid.ds.items != d3.valid.ds.items, "another seed should give other validation files"
    assert all('val' not in f.parts for f in d1.train.ds.items + d1.valid.ds.items), "use only the images under train/"
    xb, yb = next(iter(d1.train))
    assert xb.shape == (4, 3, 16, 16), f"expected batches of 4 crops of 16×16, got {tuple(xb.shape)}"

# %% [markdown]
# ### 3. The top guesses for one image
#
# `learn.predict_item(fn)` returns the label, its index and the probability of every class. Write
# `top_k(learn, fn, k)`: the `k` most likely class names with their probabilities, most likely first, as a
# list of `(name, probability)` pairs (plain floats). The names come from the vocabulary, `learn.dls.vocab`.

# %% tags=["exercise"]
def top_k(learn, fn, k=2):
    "The `k` most likely classes of the image file `fn`, as (name, probability) pairs, most likely first."
    raise NotImplementedError

# %% tags=["check"]
with check('top_k'):
    set_seed(0)
    tdls = DataLoaders.from_folder(tiny, item_tfms=RandomResizedCrop(16), bs=4)
    tlearn = Learner(xresnet18(n_out=len(tdls.vocab), widen=0.25), tdls, cbs=[TrainCB(), DeviceCB()])
    fn = tdls.valid.ds.items[0]
    got = top_k(tlearn, fn, k=2)
    _, _, probs = tlearn.predict_item(fn)
    want = [(tdls.vocab[int(i)], float(probs[i])) for i in probs.argsort(descending=True)[:2]]
    assert isinstance(got, list) and len(got) == 2, f"expected a list of 2 pairs, got {got!r}"
    assert [n for n, _ in got] == [n for n, _ in want], f"expected the classes {[n for n, _ in want]}, got {[n for n, _ in got]}"
    assert all(isinstance(p, float) and abs(p - q) < 1e-6 for (_, p), (_, q) in zip(got, want)), f"expected {want}, got {got}"
    assert len(top_k(tlearn, fn, k=1)) == 1

# %%
ex_tmp.cleanup()
