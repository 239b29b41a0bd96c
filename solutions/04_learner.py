# Solutions to the "Try it" exercises of nbs/04_learner.ipynb, one cell per exercise, in order.
# %%
class CountCB(Callback):
    "Count the training and validation batches of a fit."
    def before_fit(self, learn): self.n_train, self.n_valid = 0, 0
    def after_batch(self, learn):
        if learn.training: self.n_train += 1
        else: self.n_valid += 1

# %%
class StopAfterCB(Callback):
    "Stop the fit after `n` training batches."
    def __init__(self, n): self.n = n
    def before_fit(self, learn): self.seen = 0
    def after_batch(self, learn):
        if not learn.training: return
        self.seen += 1
        if self.seen >= self.n: raise CancelFitException()

# %%
class LossesCB(Callback):
    "The training loss of every batch of the last fit, as floats."
    def before_fit(self, learn): self.losses = []
    def after_loss(self, learn):
        if learn.training: self.losses.append(learn.loss.item())
