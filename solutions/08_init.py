# Solutions to the "Try it" exercises of nbs/08_init.ipynb, one cell per exercise, in order.
# %%
def kaiming_init(m: nn.Module):
    "Kaiming-normal weights (std √(2/fan_in)) and zero bias for linear and conv layers."
    if not isinstance(m, (nn.Linear, nn.Conv2d)): return
    with torch.no_grad():
        fan_in = m.weight[0].numel()
        m.weight.copy_(torch.randn_like(m.weight) * math.sqrt(2 / fan_in))
        if m.bias is not None: m.bias.zero_()

# %%
def _std(hook, mod, inp, outp): hook.std = outp.std().item()

def layer_stds(model, xb, mod_filter) -> list[float]:
    "The std of the output of each module of `model` that `mod_filter` picks, for one pass of `xb`."
    with torch.no_grad(), Hooks([m for _, m in find_modules(model, mod_filter)], _std) as hooks:
        model(xb)
        return [h.std for h in hooks]

# %%
class RMSNorm(nn.Module):
    "Divide each item by the root mean square of its last dimension (`nf` values), then multiply by `weight`."
    def __init__(self, nf: int, eps: float = 1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(nf))
    def forward(self, x): return x / (x.square().mean(-1, keepdim=True) + self.eps).sqrt() * self.weight
