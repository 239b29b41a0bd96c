"""Execute notebooks top to bottom and save their outputs in place (what a reader sees on GitHub).

    python scripts/run_nb.py [--full] [--skip-slow] nbs/01_datasets.ipynb [more.ipynb ...]

Runs in the notebook's folder, like Jupyter and nbdev_test; stops at the first error. Run `nbdev_clean` after.
Cells marked `#| eval: false` are skipped, as nbdev_test does. With `--skip-slow`, `#| slow` cells are skipped
too (as nbdev_test does by default) and keep the outputs saved from their last full run. `--full` runs the long
demos too: the notebook's flag cell `FULL_RUN = False` runs as `FULL_RUN = True` (the file keeps False), and what each
cell guarded by `if FULL_RUN:` (or with such a cell beside it already) printed and drew, and how long it took, goes
into the markdown cell beside it ("Output of a full run"), which Run All leaves as it is.
Progress-bar frames are collapsed to the last one before saving.
"""
import os, re, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
sys.path.insert(0, str(Path(__file__).resolve().parent))
from jupyter_course import FLAG, _took, collapse_outputs, collapse_progress, guarded_cells, is_full_output, set_full_output

def has_flag(cell, flag: str) -> bool:
    "Whether the code cell `cell` carries the directive `#| <flag>` (as in `#| eval: false` or `#| slow`)."
    return re.search(rf'^#\|\s*{re.escape(flag)}\s*$', cell.source, re.M) is not None

def machine() -> str:
    "The machine that ran a full run, in a few words: its CPU cores and torch threads, or the GPU's name."
    import torch
    if torch.cuda.is_available(): return torch.cuda.get_device_name()
    n = torch.get_num_threads()
    return f'{os.cpu_count()} CPU cores, {n} torch thread' + 's'*(n > 1)

def run_nb(path: Path, full=False, skip_slow=False):
    "Execute the notebook at `path` and write it back with outputs; skipped cells keep theirs; `full` sets `FULL_RUN = True` for this run."
    nb = read_nb(path)
    flags = [c for c in nb.cells if c.cell_type == 'code' and c.source.startswith(f'{FLAG} =')]
    saved = [c.source for c in flags]
    if full:
        for c in flags: c.source = f'{FLAG} = True'
    kept = set(guarded_cells(nb)) | {i for i, c in enumerate(nb.cells[:-1]) if is_full_output(nb.cells[i + 1])}
    guarded = {id(nb.cells[i]): i for i in kept} if full else {}  # the cells whose full run is kept beside them
    started, full_runs = {}, {}  # cell index -> (outputs, seconds) of each guarded cell
    def pre(cell):
        started[id(cell)] = time.perf_counter()
        return has_flag(cell, 'eval: false') or (skip_slow and has_flag(cell, 'slow'))
    def post(cell):
        if id(cell) in guarded: full_runs[guarded[id(cell)]] = (collapse_outputs(cell.outputs), time.perf_counter() - started[id(cell)])
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell = CaptureShell()
        shell.run_all(nb, exc_stop=True, preproc=pre, postproc=post)
    finally:
        os.chdir(cwd)
        for c, src in zip(flags, saved): c.source = src
    for i in sorted(full_runs, reverse=True):
        outputs, seconds = full_runs[i]
        set_full_output(nb, path.stem, i, outputs, f'{_took(seconds)} on {machine()}')
    collapse_progress(nb)
    write_nb(nb, path)

if __name__ == '__main__':
    args = sys.argv[1:]
    full, skip_slow = '--full' in args, '--skip-slow' in args
    for p in [a for a in args if a not in ('--full', '--skip-slow')]:
        run_nb(Path(p), full, skip_slow); print(f"ran {p}")
