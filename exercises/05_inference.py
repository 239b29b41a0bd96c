# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
set_seed(0)
tx = torch.randn(48, 1, 4, 4)
ty = torch.randint(0, 3, (48,))
tiny_dls = DataLoaders.from_dsets(Dataset(tx[:32], ty[:32]), Dataset(tx[32:], ty[32:]), bs=8)  # 32 training, 16 validation items
def tiny_learner(loss_func=F.cross_entropy, n_out=3):
    "An untrained learner on 4×4 one-channel 'images': enough to check what `get_preds` returns."
    set_seed(0)
    return Learner(nn.Sequential(nn.Flatten(), nn.Linear(16, n_out)), tiny_dls, loss_func, cbs=[TrainCB()])

# %% [markdown]
# ### 1. A loss that gives one loss per item
#
# `get_preds(with_loss=True)` and `Interpretation` need one loss per item, which they get through
# `NoneReduce`: a loss *function* must take a `reduction` argument and honour `reduction='none'`. Write
# `my_mse(preds, targs, reduction='mean')`, the squared error `(preds - targs)**2` reduced by `'mean'`,
# `'sum'` or not at all (`'none'`: the squared errors, same shape as `preds`).

# %% tags=["exercise"]
def my_mse(preds, targs, reduction='mean'):
    "The squared error of `preds` against `targs`: its mean, its sum, or every element (`reduction='none'`)."
    raise NotImplementedError

# %% tags=["check"]
with check('my_mse'):
    p, t = torch.randn(5, 2), torch.randn(5, 2)
    for red in ('mean', 'sum', 'none'):
        got, want = my_mse(p, t, reduction=red), F.mse_loss(p, t, reduction=red)
        assert got.shape == want.shape and torch.allclose(got, want), f"reduction={red!r}: expected {want}, got {got}"
    try_learn = tiny_learner(my_mse, n_out=1)
    yf = torch.linspace(-1, 1, 16)[:, None]  # regression targets for the 16 validation items
    try_preds, try_targs, try_losses = try_learn.get_preds(dl=[(tx[32:40], yf[:8]), (tx[40:], yf[8:])], with_loss=True)
    assert try_losses.shape == (16,), f"get_preds should give one loss per item (16), got shape {tuple(try_losses.shape)}"
    assert torch.allclose(try_losses, ((try_preds - try_targs)**2)[:, 0]), "the per-item losses should be the squared errors"

# %% [markdown]
# ### 2. Accuracy class by class
#
# The confusion matrix of an `Interpretation` (`interp.confusion_matrix()`) counts actual classes in rows
# and predicted ones in columns. Write `per_class_accuracy(interp)`: a dict from each class name
# (`interp.vocab`) to the fraction of that class's items the model got right (a float).

# %% tags=["exercise"]
def per_class_accuracy(interp) -> dict:
    "The fraction of each class's items predicted right, by class name."
    raise NotImplementedError

# %% tags=["check"]
with check('per_class_accuracy'):
    try_targs, try_dec = torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 0, 1, 2, 2, 1])
    try_interp = Interpretation(None, F.one_hot(try_dec, 3).float(), try_targs, try_dec, torch.zeros(6), vocab=['cat', 'dog', 'owl'])
    got, want = per_class_accuracy(try_interp), {'cat': 1., 'dog': 0.5, 'owl': 2/3}
    assert isinstance(got, dict) and set(got) == set(want), f"expected a dict with keys {sorted(want)}, got {got!r}"
    assert all(abs(float(got[k]) - v) < 1e-6 for k, v in want.items()), f"expected {want}, got {got}"

# %% [markdown]
# ### 3. Test-time augmentation by hand
#
# Write `flip_tta(learn, dl)`: the predictions over `dl` averaged over the inputs as they are and flipped
# left-right (`x.flip(-1)`). Use `learn.get_preds` and its `tfms` argument (a list of functions of the input
# batch) rather than calling the model yourself: that way the callbacks run as in validation. Return the
# predictions only.

# %% tags=["exercise"]
def flip_tta(learn, dl):
    "The predictions of `learn` over `dl`, averaged over the inputs and their left-right flip."
    raise NotImplementedError

# %% tags=["check"]
with check('flip_tta'):
    try_learn = tiny_learner()
    got = flip_tta(try_learn, tiny_dls.valid)
    assert isinstance(got, torch.Tensor), f"return the predictions only (a tensor), got {type(got).__name__}"
    xv = tiny_dls.valid.ds.x
    with torch.no_grad(): want = (try_learn.model(xv).softmax(-1) + try_learn.model(xv.flip(-1)).softmax(-1)) / 2
    assert got.shape == want.shape, f"expected predictions of shape {tuple(want.shape)}, got {tuple(got.shape)}"
    assert torch.allclose(got, want, atol=1e-6), "expected the mean of the probabilities for the images and their flips"

# %% [markdown]
# To think about: train with `nn.CrossEntropyLoss(label_smoothing=0.1)` in place of `LabelSmoothingCE`.
# Which activation does `get_preds` pick (`loss_activation(...)`), and why does that loss not need an
# `activation` method?
