# %%
import argparse, contextlib, io, tempfile
from pathlib import Path

# %%
import_missing('minitrain.all')  # minitrain's names that the notebook above has not defined (never its own)

# %%
def parse_exit(parser, argv):
    "Parse `argv` with `parser`: `(0, the namespace)` if it parses, else `(exit status, the last line of the error)`. The checks use it."
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try: return 0, parser.parse_args(argv)
        except SystemExit as e: return e.code, (err.getvalue().strip().splitlines() or [''])[-1]

# %% [markdown]
# ### 1. An argparse type of your own
#
# An argparse `type=` function turns the text of an option into its value, or raises
# `argparse.ArgumentTypeError` with what is wrong; argparse then prints `error: argument --bs: <your message>`
# and exits with status 2. Write `power_of_two(s)`: the int `s` when it is 1, 2, 4, 8..., else an
# `ArgumentTypeError` saying `must be a power of two, got <s>` (also for text that is not an integer).

# %% tags=["exercise"]
def power_of_two(s: str) -> int:
    "The int in `s` if it is a power of two (1, 2, 4...), else an `argparse.ArgumentTypeError`."
    raise NotImplementedError

# %% tags=["check"]
with check('power_of_two'):
    ap = argparse.ArgumentParser(prog='demo')
    ap.add_argument('--bs', type=power_of_two, default=64)
    for argv, want in (([], 64), (['--bs', '1'], 1), (['--bs', '256'], 256)):
        status, got = parse_exit(ap, argv)
        assert status == 0 and got.bs == want and type(got.bs) is int, f"{argv}: expected bs={want}, got {got}"
    for bad in ('48', '0', '-4', 'abc', '2.0'):
        status, msg = parse_exit(ap, ['--bs', bad])
        assert status == 2, f"--bs {bad}: expected an error (exit status 2), but it parsed: {msg}"
        assert 'power of two' in msg and bad in msg, f"--bs {bad}: the error should say 'must be a power of two, got {bad}'; it says: {msg}"

# %% [markdown]
# ### 2. Options that exclude each other
#
# The `train` command takes `--lr 0.01` or `--lr-find`, never both: they are in an argparse *mutually
# exclusive group* (`parser.add_mutually_exclusive_group()`). Write `lr_parser()`: an
# `argparse.ArgumentParser(prog='demo')` with `--lr` (a float, default 0.01) and `--lr-find` (a flag,
# `action='store_true'`) in such a group.

# %% tags=["exercise"]
def lr_parser() -> argparse.ArgumentParser:
    "A parser with `--lr LR` and `--lr-find`, which exclude each other."
    raise NotImplementedError

# %% tags=["check"]
with check('lr_parser'):
    ap = lr_parser()
    for argv, want in (([], (0.01, False)), (['--lr', '0.1'], (0.1, False)), (['--lr-find'], (0.01, True))):
        status, got = parse_exit(ap, argv)
        assert status == 0, f"{argv} should parse; it fails with: {got}"
        assert (got.lr, got.lr_find) == want, f"{argv}: expected lr={want[0]}, lr_find={want[1]}; got lr={got.lr}, lr_find={got.lr_find}"
    status, msg = parse_exit(ap, ['--lr', '0.1', '--lr-find'])
    assert status == 2 and 'not allowed' in msg, f"--lr with --lr-find should stop with 'not allowed with argument'; got status {status}: {msg}"

# %% [markdown]
# ### 3. A check that needs the disk
#
# Some checks can only be made after parsing, like `_check_out` above, which makes sure `--out` is writable.
# Write `check_overwrite(args)`, in the same style: it returns a message (a string) when `args.out` is a
# folder that already holds a `model.pth` and `args.force` is false (the run would overwrite an earlier
# checkpoint), and `None` when all is well (no `--out`, a new or empty folder, or `--force`). The message
# names the file and says how to go on: another `--out`, or `--force`.

# %% tags=["exercise"]
def check_overwrite(args) -> str | None:
    "Why the run would overwrite an earlier checkpoint in `args.out` (None if it would not, or `args.force`)."
    raise NotImplementedError

# %% tags=["check"]
with check('check_overwrite'):
    with tempfile.TemporaryDirectory() as d:
        run = Path(d)/'run'
        ns = lambda out, force=False: argparse.Namespace(out=out, force=force)
        for args in (ns(None), ns(run), ns(Path(d))):
            assert check_overwrite(args) is None, f"out={args.out} holds no model.pth: expected None, got {check_overwrite(args)!r}"
        run.mkdir(); (run/'model.pth').write_bytes(b'checkpoint')
        msg = check_overwrite(ns(run))
        assert isinstance(msg, str), f"out={run} holds a model.pth: expected a message, got {msg!r}"
        assert 'model.pth' in msg and '--force' in msg and '--out' in msg, f"the message should name model.pth and mention --out and --force: {msg!r}"
        assert check_overwrite(ns(run, force=True)) is None, "with --force the run may overwrite: expected None"
        assert (run/'model.pth').read_bytes() == b'checkpoint', "a check must not change anything on disk"
