"""Execute notebooks top to bottom and save their outputs in place (what a reader sees on GitHub).

    python scripts/run_nb.py [--full] nbs/01_datasets.ipynb [more.ipynb ...]

Runs in the notebook's folder, like Jupyter and nbdev_test; stops at the first error. Run `nbdev_clean` after.
Cells marked `#| eval: false` are skipped, as nbdev_test does. `--full` runs the long demos too: the
notebook's flag cell `FULL_RUN = False` runs as `FULL_RUN = True` (the file keeps False). Progress-bar
frames are collapsed to the last one before saving.
"""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
sys.path.insert(0, str(Path(__file__).resolve().parent))
from jupyter_course import FLAG, collapse_progress

def run_nb(path: Path, full=False):
    "Execute the notebook at `path` and write it back with outputs; `full` sets `FULL_RUN = True` for this run."
    nb = read_nb(path)
    flags = [c for c in nb.cells if c.cell_type == 'code' and c.source.startswith(f'{FLAG} =')]
    saved = [c.source for c in flags]
    if full:
        for c in flags: c.source = f'{FLAG} = True'
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell = CaptureShell()
        skip = lambda cell: '#| eval: false' in cell.source or '#|eval: false' in cell.source
        shell.run_all(nb, exc_stop=True, preproc=skip)
    finally:
        os.chdir(cwd)
        for c, src in zip(flags, saved): c.source = src
    collapse_progress(nb)
    write_nb(nb, path)

if __name__ == '__main__':
    args = sys.argv[1:]
    full = '--full' in args
    for p in (a for a in args if a != '--full'):
        run_nb(Path(p), full); print(f"ran {p}")
