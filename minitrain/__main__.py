"""The main job: `python -m minitrain train` trains a model on Fashion-MNIST and prints its accuracy."""
import argparse, sys, time
import torch
from torch import nn
import torch.nn.functional as F
from .core import def_device, set_seed, to_device
from .datasets import load_fashion_mnist

def mlp(n_hidden: int = 256) -> nn.Module:
    "A two-layer perceptron for 28×28 images in 10 classes."
    return nn.Sequential(nn.Flatten(), nn.Linear(28*28, n_hidden), nn.ReLU(), nn.Linear(n_hidden, 10))

def accuracy(model, x, y, bs=1024) -> float:
    "Fraction of `x` that `model` labels as `y`."
    model.eval()
    with torch.no_grad():
        correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in zip(x.split(bs), y.split(bs)))
    return correct/len(y)

def train(args):
    "Train an MLP with a plain PyTorch loop (later stages replace it with the Learner)."
    set_seed(args.seed)
    t0 = time.perf_counter()
    fm = load_fashion_mnist()
    print(f"data: {fm.source} ({len(fm.x_train)} train, {len(fm.x_valid)} valid images)")
    norm = lambda x: to_device((x.float()/255 - 0.2860)/0.3530, args.device)
    xt, yt, xv, yv = norm(fm.x_train), to_device(fm.y_train, args.device), norm(fm.x_valid), to_device(fm.y_valid, args.device)
    model = mlp().to(args.device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(xt), device=args.device).split(args.bs):
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward(); opt.step(); opt.zero_grad()
        print(f"epoch {epoch}: valid accuracy {accuracy(model, xv, yv):.4f}")
    print(f"accuracy {accuracy(model, xv, yv):.4f} in {time.perf_counter()-t0:.1f}s")

def positive_int(s: str) -> int:
    v = int(s)
    if v <= 0: raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v

def main(argv=None):
    "Command-line entry point."
    ap = argparse.ArgumentParser(prog='minitrain', description=__doc__)
    sub = ap.add_subparsers(dest='command', required=True)
    tr = sub.add_parser('train', help='train a model on Fashion-MNIST and print its validation accuracy')
    tr.add_argument('--epochs', type=positive_int, default=3, help='passes over the training data (default 3)')
    tr.add_argument('--bs', type=positive_int, default=128, help='batch size (default 128)')
    tr.add_argument('--lr', type=float, default=0.05, help='learning rate (default 0.05)')
    tr.add_argument('--seed', type=int, default=42, help='random seed (default 42)')
    tr.add_argument('--device', default=def_device, help=f'torch device (default {def_device})')
    args = ap.parse_args(argv)
    if args.command == 'train': train(args)

if __name__ == '__main__': sys.exit(main())
