# Solutions to the "Try it" exercises of nbs/05_inference.ipynb, one cell per exercise, in order.
# %%
def my_mse(preds, targs, reduction='mean'):
    "The squared error of `preds` against `targs`: its mean, its sum, or every element (`reduction='none'`)."
    err = (preds - targs)**2
    if reduction == 'none': return err
    if reduction == 'sum': return err.sum()
    if reduction == 'mean': return err.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

# %%
def per_class_accuracy(interp) -> dict:
    "The fraction of each class's items predicted right, by class name."
    cm = interp.confusion_matrix()
    right, total = cm.diag().float(), cm.sum(1).float()
    return {name: (r/n).item() for name, r, n in zip(interp.vocab, right, total)}

# %%
def flip_tta(learn, dl):
    "The predictions of `learn` over `dl`, averaged over the inputs and their left-right flip."
    preds, _ = learn.get_preds(dl=dl, tfms=[lambda x: x.flip(-1)])
    return preds
