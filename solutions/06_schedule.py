# Solutions to the "Try it" exercises of nbs/06_schedule.ipynb, one cell per exercise, in order.
# %%
@annealer
def sched_step(start, end, pos):
    "`start` for the first half of training, then `end`."
    return start if pos < 0.5 else end

# %%
warmup_cos = combine_scheds([0.1, 0.9], [sched_lin(0., 0.1), sched_cos(0.1, 0.)])

# %%
class LRCB(Callback):
    "The learning rate used by every training batch of the last fit."
    def before_fit(self, learn): self.lrs = []
    def after_batch(self, learn):
        if learn.training: self.lrs.append(learn.opt.param_groups[0]['lr'])
