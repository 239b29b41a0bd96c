# Solutions to the "Try it" exercises of nbs/16_tutorial_imagenette.ipynb, one cell per exercise, in order.
# %%
def make_label_func(lbl_dict):
    "A function of a file: the readable label of its folder's code, by `lbl_dict`; a clear KeyError for unknown codes."
    def label(fn):
        code = parent_label(fn)
        if code not in lbl_dict:
            raise KeyError(f"{fn}: its folder {code!r} is not in the label dictionary, which knows {', '.join(sorted(lbl_dict))}")
        return lbl_dict[code]
    return label

# %%
def random_split_dls(path, seed=0):
    "DataLoaders of `path/train` with a random 25% for validation, 16×16 crops, batches of 4."
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=RandomSplitter(valid_pct=0.25, seed=seed), item_tfms=RandomResizedCrop(16))
    return dblock.dataloaders(Path(path)/'train', bs=4)

# %%
def top_k(learn, fn, k=2):
    "The `k` most likely classes of the image file `fn`, as (name, probability) pairs, most likely first."
    _, _, probs = learn.predict_item(fn)
    return [(learn.dls.vocab[int(i)], float(probs[i])) for i in probs.argsort(descending=True)[:k]]
