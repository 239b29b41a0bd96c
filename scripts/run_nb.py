"""Execute notebooks top to bottom and save their outputs in place (what a reader sees on GitHub).

    python scripts/run_nb.py [--full] [--skip-slow] nbs/01_datasets.ipynb [more.ipynb ...]

Runs in the notebook's folder, like Jupyter and nbdev_test; stops at the first error. Run `nbdev_clean` after.
Cells marked `#| eval: false` are skipped, as nbdev_test does. With `--skip-slow`, `#| slow` cells are skipped
too (as nbdev_test does by default) and keep the outputs saved from their last full run. `--full` runs the long
demos too: the notebook's flag cell `FULL_RUN = False` runs as `FULL_RUN = True` (the file keeps False).
Progress-bar frames are collapsed to the last one before saving.
"""
import os, re, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
sys.path.insert(0, str(Path(__file__).resolve().parent))
from jupyter_course import FLAG, collapse_progress

def has_flag(cell, flag: str) -> bool:
    "Whether the code cell `cell` carries the directive `#| <flag>` (as in `#| eval: false` or `#| slow`)."
    return re.search(rf'^#\|\s*{re.escape(flag)}\s*$', cell.source, re.M) is not None

def run_nb(path: Path, full=False, skip_slow=False):
    "Execute the notebook at `path` and write it back with outputs; skipped cells keep theirs; `full` sets `FULL_RUN = True` for this run."
    nb = read_nb(path)
    flags = [c for c in nb.cells if c.cell_type == 'code' and c.source.startswith(f'{FLAG} =')]
    saved = [c.source for c in flags]
    if full:
        for c in flags: c.source = f'{FLAG} = True'
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell = CaptureShell()
        skip = lambda cell: has_flag(cell, 'eval: false') or (skip_slow and has_flag(cell, 'slow'))
        shell.run_all(nb, exc_stop=True, preproc=skip)
    finally:
        os.chdir(cwd)
        for c, src in zip(flags, saved): c.source = src
    collapse_progress(nb)
    write_nb(nb, path)

if __name__ == '__main__':
    args = sys.argv[1:]
    full, skip_slow = '--full' in args, '--skip-slow' in args
    for p in [a for a in args if a not in ('--full', '--skip-slow')]:
        run_nb(Path(p), full, skip_slow); print(f"ran {p}")
