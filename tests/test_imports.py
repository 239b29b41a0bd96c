"Each stage imports on its own, without pulling in later stages (CONTRIBUTING.md: a stage imports only from earlier ones)."
import json, subprocess, sys
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parent.parent/'nbs'

def stages() -> list[str]:
    "The exported modules, in notebook order, from each notebook's `#| default_exp`."
    mods = []
    for nb in sorted(NBS.glob('[0-9]*.ipynb')):
        for cell in json.loads(nb.read_text())['cells']:
            src = ''.join(cell['source'])
            if cell['cell_type'] == 'code' and src.startswith('#| default_exp'):
                mods.append(src.split()[2]); break
    return mods

STAGES = stages()

def test_stages_found():
    assert STAGES[:2] == ['core', 'datasets']

@pytest.mark.parametrize('i', range(len(STAGES)), ids=STAGES)
def test_stage_imports_alone(i):
    code = (f"import sys, minitrain.{STAGES[i]}; "
            "print(' '.join(m.split('.')[1] for m in sys.modules if m.startswith('minitrain.')))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    later = set(STAGES[i+1:]) & set(out)
    assert not later, f"minitrain.{STAGES[i]} pulls in later stages {sorted(later)}"

def test_all_reexports_every_stage():
    import minitrain.all as a
    src = Path(a.__file__).read_text()
    missing = [m for m in STAGES if f'from .{m} import *' not in src]
    assert not missing, f"minitrain/all.py does not re-export {missing}"
