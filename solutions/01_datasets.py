# Solutions to the "Try it" exercises of nbs/01_datasets.ipynb, one cell per exercise, in order.
# %%
def idx_header(data: bytes):
    "The type code and the dimensions (a tuple) in the header of the IDX bytes `data`."
    code, ndim = data[2], data[3]
    return code, tuple(int.from_bytes(data[4+4*i:8+4*i], 'big') for i in range(ndim))

# %%
def class_counts(y):
    "How many labels of each Fashion-MNIST class `y` holds, by class name."
    counts = torch.bincount(y, minlength=len(FASHION_CLASSES))
    return {name: int(c) for name, c in zip(FASHION_CLASSES, counts)}
