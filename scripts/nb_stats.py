"""Reading-size statistics per notebook: the longest exported cell, and words of prose / lines of code on the main path.

    python scripts/nb_stats.py [nbs/*.ipynb]

The main path is everything before a markdown heading that starts "Going faster" (a reader may stop there).
Lines of code count non-blank lines of code cells, directives (`#|`) left out.
"""
import json, re, sys
from pathlib import Path

def stats(path: Path) -> dict:
    "Longest exported cell (lines), prose words and code lines on the main path, of the notebook at `path`."
    cells = json.loads(path.read_text(encoding='utf-8'))['cells']
    longest, words, code, main = 0, 0, 0, True
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and re.search(r'^#+\s*Going faster', src, re.M | re.I): main = False
        lines = [l for l in src.splitlines() if l.strip() and not l.lstrip().startswith('#|')]
        if c['cell_type'] == 'code' and re.search(r'^#\|\s*export', src, re.M): longest = max(longest, len(lines))
        if not main: continue
        if c['cell_type'] == 'markdown': words += len(src.split())
        elif c['cell_type'] == 'code': code += len(lines)
    return dict(longest_export=longest, prose_words=words, code_lines=code)

if __name__ == '__main__':
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path('nbs').glob('*.ipynb'))
    print(f"{'notebook':36} {'longest exported cell':>22} {'prose words':>12} {'code lines':>11}")
    for p in paths:
        s = stats(p)
        print(f"{p.name:36} {s['longest_export']:>22} {s['prose_words']:>12} {s['code_lines']:>11}")
