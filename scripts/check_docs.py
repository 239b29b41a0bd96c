"""The docs-processing step of `nbdev_docs` (`nbdev_proc_nbs`), without Quarto, must run clean: no error,
no warning (nbdev warns, for example, about a cell that mixes imports with other code, because it runs
every cell with an import when it renders the docs).

    python scripts/check_docs.py

`nbdev_proc_nbs` itself would first try to download and install Quarto (with sudo) when it is missing,
so this runs its steps directly. It writes only what nbdev writes: `_proc/` and the generated
`nbs/nbdev.yml` and `nbs/sidebar.yml` (all ignored by git).
"""
import subprocess, sys

STEPS = '''
from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
from nbdev.serve import proc_nbs
refresh_quarto_yml()
nbdev_sidebar.__wrapped__()
proc_nbs(n_workers=2, force=True)
'''

if __name__ == '__main__':
    r = subprocess.run([sys.executable, '-W', 'always', '-c', STEPS], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode or out:
        sys.exit(f"nbdev's docs processing is not clean (exit {r.returncode}):\n{out}")
    print("docs processing: clean")
