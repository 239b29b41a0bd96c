# Solutions to the "Try it" exercises of nbs/17_cli.ipynb, one cell per exercise, in order.
# %%
def power_of_two(s: str) -> int:
    "The int in `s` if it is a power of two (1, 2, 4...), else an `argparse.ArgumentTypeError`."
    try: v = int(s)
    except ValueError: raise argparse.ArgumentTypeError(f"must be a power of two, got {s!r}") from None
    if v < 1 or v & (v - 1): raise argparse.ArgumentTypeError(f"must be a power of two, got {s}")
    return v

# %%
def lr_parser() -> argparse.ArgumentParser:
    "A parser with `--lr LR` and `--lr-find`, which exclude each other."
    ap = argparse.ArgumentParser(prog='demo')
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--lr', type=float, default=0.01, help='learning rate')
    g.add_argument('--lr-find', action='store_true', help="use the learning-rate finder's suggestion")
    return ap

# %%
def check_overwrite(args) -> str | None:
    "Why the run would overwrite an earlier checkpoint in `args.out` (None if it would not, or `args.force`)."
    if args.out is None or args.force: return None
    ckpt = Path(args.out)/'model.pth'
    if ckpt.exists(): return f"--out {args.out}: {ckpt} exists and would be overwritten; choose another --out, or pass --force"
    return None
