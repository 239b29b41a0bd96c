# %%
import torch
import torch.nn.functional as F
from torch import nn

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %% [markdown]
# ### 1. Flip test-time augmentation by hand
#
# `learn.tta()` averages the predicted probabilities of each image and its mirror. Write `flip_tta(model, x)`:
# the mean of `softmax(model(x))` and `softmax(model(x flipped left-right))` over the classes (dim 1), for a
# batch `x` of N×C×H×W images, without gradients.

# %% tags=["exercise"]
def flip_tta(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    "The mean of the class probabilities of `x` and of its left-right mirror under `model`."
    raise NotImplementedError

# %% tags=["check"]
with check('flip_tta'):
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.randn(5, 1, 3, 4)
    p = flip_tta(model, x)
    assert p.shape == (5, 3), f"expected one row of 3 probabilities per image, shape (5, 3); got {tuple(p.shape)}"
    assert not p.requires_grad, "compute it under torch.no_grad(): predictions need no gradients"
    assert torch.allclose(p.sum(1), torch.ones(5)), "each row should be probabilities summing to 1 (softmax over dim 1)"
    want = (F.softmax(model(x), 1) + F.softmax(model(x.flip(-1)), 1)).detach()/2
    assert torch.allclose(p, want, atol=1e-6), "average the softmax of the images and of their mirrors (x.flip(-1))"

# %% [markdown]
# ### 2. Smoothed targets
#
# Label smoothing trains against targets that put `1 - eps` on the label and spread `eps` evenly over all
# `n` classes (the label included). Write `smooth_targets(y, n, eps)`: those targets, an N×n float tensor, for
# the labels `y`. The check verifies that cross-entropy against them is `LabelSmoothingCrossEntropy(eps)`.

# %% tags=["exercise"]
def smooth_targets(y: torch.Tensor, n: int, eps: float) -> torch.Tensor:
    "One-hot targets of the labels `y` in `n` classes, smoothed by `eps`."
    raise NotImplementedError

# %% tags=["check"]
with check('smooth_targets'):
    y = torch.tensor([0, 2, 1])
    t = smooth_targets(y, 3, 0.3)
    assert t.shape == (3, 3) and t.dtype.is_floating_point, f"expected a float tensor of shape (3, 3); got {t.dtype} {tuple(t.shape)}"
    assert torch.allclose(t.sum(1), torch.ones(3)), "each row should sum to 1"
    assert torch.isclose(t[0, 0], torch.tensor(0.8)) and torch.isclose(t[0, 1], torch.tensor(0.1)), \
        "with eps 0.3 and 3 classes the label gets 1 - 0.3 + 0.3/3 = 0.8 and each other class 0.3/3 = 0.1"
    logits = torch.randn(3, 3)
    ce = -(t*F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.isclose(ce, LabelSmoothingCrossEntropy(0.3)(logits, y)), "cross-entropy against them should be LabelSmoothingCrossEntropy(eps)"
