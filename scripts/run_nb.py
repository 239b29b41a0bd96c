"""Execute notebooks top to bottom and save their outputs in place (what a reader sees on GitHub).

    python scripts/run_nb.py nbs/01_datasets.ipynb [more.ipynb ...]

Runs in the notebook's folder, like Jupyter and nbdev_test; stops at the first error. Run `nbdev_clean` after.
Cells marked `#| eval: false` are skipped, as nbdev_test does.
"""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

def run_nb(path: Path):
    "Execute the notebook at `path` and write it back with outputs."
    nb = read_nb(path)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell = CaptureShell()
        skip = lambda cell: '#| eval: false' in cell.source or '#|eval: false' in cell.source
        shell.run_all(nb, exc_stop=True, preproc=skip)
    finally: os.chdir(cwd)
    write_nb(nb, path)

if __name__ == '__main__':
    for p in sys.argv[1:]:
        run_nb(Path(p)); print(f"ran {p}")
