"""What minitrain adds to a program's start, each measured in fresh processes, interleaved with a reference.

    python bench/bench_startup.py [--repeats 7]

1. `import minitrain.all` after `import torch`, against `import torch` alone (goal: at most +0.4 s).
2. The first `set_seed` call (goal: at most 0.1 s; it used to import torch's compiler, several seconds).
3. Making the first optimizer and taking a step: minitrain's `Adam` against `torch.optim.AdamW`, whose
   base-class methods import the compiler (`torch._dynamo`) on first use.
Each figure is the median over `--repeats` fresh interpreters, so the operating system's file cache is warm
after the first; the load average is printed, since other processes slow every start.
"""
import argparse, os, statistics, subprocess, sys

SNIPPETS = {
    'import torch': "import torch",
    'import torch, minitrain.all': "import torch; import minitrain.all",
    'first set_seed': "import torch, minitrain.all; from minitrain.core import set_seed; t = time.perf_counter(); set_seed(0)",
    'first minitrain Adam step': ("import torch, minitrain.all; from minitrain.optimizer import Adam; w = torch.ones(3, requires_grad=True); "
                                  "w.sum().backward(); t = time.perf_counter(); o = Adam([w], lr=0.1); o.step(); o.zero_grad()"),
    'first torch AdamW step': ("import torch, minitrain.all; w = torch.ones(3, requires_grad=True); w.sum().backward(); "
                               "t = time.perf_counter(); o = torch.optim.AdamW([w], lr=0.1); o.step(); o.zero_grad()"),
}

def seconds(code: str) -> float:
    "Seconds `code` takes in a fresh interpreter: from the start of `code`, or from `t` if `code` sets it."
    prog = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, '-c', prog], check=True, capture_output=True, text=True).stdout)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=7)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times = {k: [] for k in SNIPPETS}
    for _ in range(a.repeats):
        for k, code in SNIPPETS.items(): times[k].append(seconds(code))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items(): print(f"{k:30s} {v:7.3f} s")
    extra = med['import torch, minitrain.all'] - med['import torch']
    print(f"import minitrain.all beyond torch: {extra:+.2f} s (goal ≤ +0.4 s: {'ok' if extra <= 0.4 else 'OVER'})")
    print(f"first set_seed: {med['first set_seed']*1e3:.1f} ms (goal ≤ 100 ms: {'ok' if med['first set_seed'] <= 0.1 else 'OVER'})")
    print(f"first optimizer step: minitrain Adam {med['first minitrain Adam step']*1e3:.0f} ms, "
          f"torch AdamW {med['first torch AdamW step']*1e3:.0f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")

if __name__ == '__main__': main()
