# Solutions to the "Try it" exercises of nbs/13_vision.ipynb, one cell per exercise, in order.
# %%
def name_label(o) -> str:
    "The class in the file name of `o`: the part before the last `_`."
    stem = Path(o).stem
    if '_' not in stem: raise ValueError(f"name_label: {Path(o).name} has no '_' in its name, so no class before it")
    return stem.rsplit('_', 1)[0]

# %%
class FuncSplitter:
    "Split items by `func`: validation for those where `func(item)` is true, training for the rest."
    def __init__(self, func): self.func = func
    def __call__(self, items) -> tuple[list[int], list[int]]:
        is_valid = [bool(self.func(o)) for o in items]
        train, valid = [i for i, v in enumerate(is_valid) if not v], [i for i, v in enumerate(is_valid) if v]
        if not train or not valid:
            raise ValueError(f"FuncSplitter: {len(train)} training and {len(valid)} validation items; both splits need some")
        return train, valid

# %%
class RandomHFlip:
    "Mirror the image left-right with probability `p` in training; leave it as it is for validation."
    def __init__(self, p=0.5): self.p = p
    def __call__(self, img): return ImageOps.mirror(img) if random.random() < self.p else img
    def valid(self, img): return img
