"""Step time of minitrain's optimizers against torch.optim, in one run, on two models.

    python bench/bench_optimizer.py [--steps 30] [--repeats 7] [--threads N]

Models: ~1M parameters in 20 tensors (10 Linear(316, 316)), and ~200 small tensors (100 Linear(32, 32)).
Optimizers: SGD with momentum 0.9, and Adam with decoupled weight decay (torch's AdamW), same hypers on
both sides. For each, minitrain's exported optimizer (vectorised path), its readable per-parameter loop and
for Adam its `fused=True` path (torch's kernel),
against torch.optim's default implementation (on CPU its per-parameter loop), `foreach=True`, and for Adam
`fused=True`. Every optimizer steps its own copy of the model, with fixed gradients; each repeat times
`--steps` steps of every optimizer in turn, and the best repeat counts. Ratios are ours / torch's: below 1
means minitrain is faster; the last column is minitrain's fused Adam over torch's fused AdamW.
"""
import argparse, math, os, time
import torch
from torch import nn
from minitrain.optimizer import SGD, Adam

MODELS = {'1M params / 20 tensors': lambda: nn.Sequential(*[nn.Linear(316, 316) for _ in range(10)]),
          '200 small tensors': lambda: nn.Sequential(*[nn.Linear(32, 32) for _ in range(100)])}

def readable(opt):
    "`opt`, switched to the per-parameter loop."
    opt.foreach = False
    return opt

def candidates(kind: str) -> dict:
    "Functions making each optimizer to time for `kind` ('SGD' or 'Adam'), from a list of parameters."
    if kind == 'SGD':
        hp = dict(lr=0.01, momentum=0.9)
        return {'minitrain': lambda ps: SGD(ps, lr=0.01, mom=0.9),
                'minitrain readable': lambda ps: readable(SGD(ps, lr=0.01, mom=0.9)),
                'torch default': lambda ps: torch.optim.SGD(ps, **hp),
                'torch foreach': lambda ps: torch.optim.SGD(ps, **hp, foreach=True)}
    hp = dict(lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    return {'minitrain': lambda ps: Adam(ps, lr=1e-3),
            'minitrain fused': lambda ps: Adam(ps, lr=1e-3, fused=True),
            'minitrain readable': lambda ps: readable(Adam(ps, lr=1e-3)),
            'torch default': lambda ps: torch.optim.AdamW(ps, **hp),
            'torch foreach': lambda ps: torch.optim.AdamW(ps, **hp, foreach=True),
            'torch fused': lambda ps: torch.optim.AdamW(ps, **hp, fused=True)}

def time_steps(opt, steps: int) -> float:
    "Seconds per step over `steps` steps of `opt`."
    t0 = time.perf_counter()
    for _ in range(steps): opt.step()
    return (time.perf_counter() - t0) / steps

def bench(make_model, kind: str, steps: int, repeats: int) -> dict:
    "Best seconds per step of each candidate for `kind` on its own copy of `make_model()`, the repeats interleaved."
    torch.manual_seed(0)
    model = make_model()
    grads = [torch.randn_like(p) for p in model.parameters()]
    opts = {}
    for name, make in candidates(kind).items():
        ps = [p.detach().clone().requires_grad_() for p in model.parameters()]
        for p, g in zip(ps, grads): p.grad = g.clone()
        opts[name] = make(ps)
        time_steps(opts[name], 3)  # warm up: creates the state
    best = {name: math.inf for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items(): best[name] = min(best[name], time_steps(opt, steps))
    return best

COLUMNS = ['minitrain', 'minitrain readable', 'minitrain fused', 'torch default', 'torch foreach', 'torch fused']

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; best of {args.repeats} x {args.steps} steps; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine skews timings)")
    print(f"\n{'':38s}{'ms per step':^62s}  {'minitrain / torch':^36s}")
    print(f"{'model':24s}{'optimizer':14s}{'minitrain':>10s}{'readable':>10s}{'ours fsd':>10s}{'default':>10s}{'foreach':>10s}{'fused':>10s}"
          f"  {'default':>9s}{'foreach':>9s}{'fused':>9s}{'fsd/fsd':>9s}")
    for model_name, make_model in MODELS.items():
        for kind in ('SGD', 'Adam'):
            t = bench(make_model, kind, args.steps, args.repeats)
            times = ''.join(f"{t[c]*1e3:10.3f}" if c in t else f"{'-':>10s}" for c in COLUMNS)
            ratios = ''.join(f"{t['minitrain']/t[c]:8.2f}x" if c in t else f"{'-':>9s}" for c in COLUMNS[3:])
            ratios += f"{t['minitrain fused']/t['torch fused']:8.2f}x" if 'torch fused' in t else f"{'-':>9s}"
            print(f"{model_name:24s}{'SGD momentum' if kind == 'SGD' else 'Adam(W)':14s}{times}  {ratios}")

if __name__ == '__main__': main()
