# Solutions to the "Try it" exercises of nbs/15_tutorial_fashion_mnist.ipynb, one cell per exercise, in order.
# %%
def deep_mlp(hidden=(256, 128)) -> nn.Sequential:
    "A perceptron for 28×28 images in 10 classes with a hidden layer of each size in `hidden`."
    sizes, layers = (28*28, *hidden), [nn.Flatten()]
    for ni, nf in zip(sizes[:-1], sizes[1:]): layers += [nn.Linear(ni, nf), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))

# %%
def cnn_dropout(p=0.25) -> nn.Sequential:
    "The course's CNN with dropout of probability `p` before the last linear layer."
    layers = list(cnn())
    return nn.Sequential(*layers[:-1], nn.Dropout(p), layers[-1])

# %%
def subset(fm, n_train: int, n_valid: int):
    "The first `n_train` training and `n_valid` validation items of the FashionMNIST `fm`."
    if n_train > len(fm.x_train) or n_valid > len(fm.x_valid):
        raise ValueError(f"subset: asked for {n_train} training and {n_valid} validation images; "
                         f"there are {len(fm.x_train)} and {len(fm.x_valid)}")
    return fm._replace(x_train=fm.x_train[:n_train], y_train=fm.y_train[:n_train],
                       x_valid=fm.x_valid[:n_valid], y_valid=fm.y_valid[:n_valid])
