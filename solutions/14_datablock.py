# Solutions to the "Try it" exercises of nbs/14_datablock.ipynb, one cell per exercise, in order.
# %%
class FlipLR(Transform):
    "Mirror Pillow images left-right; leave other values alone."
    def encodes(self, img: Image.Image): return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    def decodes(self, img: Image.Image): return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

# %%
def label_pipeline(names) -> Pipeline:
    "File path -> code before the first `_` -> readable name (`names`) -> class index."
    return Pipeline([lambda o: Path(o).name.split('_')[0], names.__getitem__, Categorize()])
