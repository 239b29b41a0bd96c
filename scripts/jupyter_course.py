"""The course in Jupyter: the project's kernel, saved outputs without progress-bar frames, the "Try it"
exercises, and "Run All" in a real kernel.

    python scripts/jupyter_course.py install            # the kernel and the save hook, inside the venv (make does it)
    python scripts/jupyter_course.py apply [NB.ipynb..] # kernelspec, collapse bar frames, "Try it" sections, nbdev_clean,
                                                        # the course map (index.ipynb, README.md) from scripts/course.tsv
    python scripts/jupyter_course.py check [NB.ipynb..] # fail if `apply` would change a notebook (make test runs it)
    python scripts/jupyter_course.py run-all [--jobs N] [NB..]  # Run All in real kernels, every cell; report what breaks the rules
    python scripts/jupyter_course.py rerun [NB..]       # Run All, then the long demos again with FULL_RUN = True (tiny)
    python scripts/jupyter_course.py guard NB "marker" MINUTES  # run the cell holding `marker` only `if FULL_RUN:`
    python scripts/jupyter_course.py listing NB "marker"        # show the cell holding `marker` as a listing, not run it

`apply` and `check` are idempotent and work on every numbered notebook by default. The exercises come from
`exercises/NN_name.py` (jupytext percent format, cells tagged `exercise` and `check`) with their solutions
in `solutions/NN_name.py`; see CONTRIBUTING.md. Run `install` with the venv's Python.
"""
import hashlib, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, EXERCISES, SOLUTIONS = ROOT/'nbs', ROOT/'exercises', ROOT/'solutions'
KERNEL = 'minitrain'
KERNELSPEC = {'display_name': KERNEL, 'language': 'python', 'name': KERNEL}
TRY_IT = '## Try it'
RUN_ALL_LIMIT = 120  # seconds per notebook for Run All on 2 cores
# A path of the machine that ran a notebook. IPython's names for a cell's code in a real kernel
# (/tmp/ipykernel_<pid>/<hash>.py, in tracebacks and warnings) are not: every machine shows the same kind. Nor is
# a folder a notebook made for itself in the system's temporary folder (tempfile.mkdtemp(prefix='minitrain-...')).
DEV_PATH = re.compile(r'(?<![\w.~-])/(?:work|tmp|root|home)/(?!ipykernel_\d+/\d+\.py\b|minitrain-)[^\s"\'\\]*')

def stage_notebooks() -> list[Path]:
    "The numbered notebooks, in course order."
    return sorted(NBS.glob('[0-9][0-9]*.ipynb'))

def course_notebooks() -> list[Path]:
    "The home page and the numbered notebooks."
    return [NBS/'index.ipynb'] * (NBS/'index.ipynb').exists() + stage_notebooks()

# ---------------------------------------------------------------- kernelspec
def set_kernelspec(nb: dict):
    "Name the project's kernel in `nb`'s metadata, so Jupyter opens it without asking."
    nb.setdefault('metadata', {})['kernelspec'] = dict(KERNELSPEC)

# ---------------------------------------------------------------- progress-bar frames
_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
_BAR = re.compile(r'\d+%\||\d+/\d+ \[')  # tqdm's "40%|" or "12/30 ["

def terminal_text(text: str) -> str:
    "What a terminal shows for `text`: a carriage return overwrites its line, so each bar keeps its last frame."
    out, lines = [], _ANSI.sub('', text).split('\n')
    for i, line in enumerate(lines):
        shown = ''
        for seg in line.split('\r'): shown = seg + shown[len(seg):]
        erased = '\r' in line and not shown.strip()  # a bar that erased itself (tqdm's leave=False)
        if erased and i < len(lines) - 1: continue
        out.append('' if erased else shown.rstrip() if '\r' in line else shown)
    return '\n'.join(out)

def _text(o) -> str: return ''.join(o) if isinstance(o, list) else o

def _is_bar_widget(o: dict) -> bool:
    "Whether output `o` is a tqdm widget bar (its state is not kept, so a saved copy shows nothing useful)."
    data = o.get('data', {})
    return 'application/vnd.jupyter.widget-view+json' in data and bool(_BAR.search(_text(data.get('text/plain', ''))))

def _lines(text: str) -> list[str]: return text.splitlines(keepends=True)

def collapse_outputs(outputs: list) -> list:
    "`outputs` with consecutive streams merged, bar frames collapsed to their last one, and widget bars dropped."
    merged = []
    for o in outputs:
        if o.get('output_type') == 'display_data' and _is_bar_widget(o): continue
        if o.get('output_type') == 'stream' and merged and merged[-1].get('output_type') == 'stream' and merged[-1]['name'] == o['name']:
            merged[-1] = {**merged[-1], 'text': _lines(_text(merged[-1]['text']) + _text(o['text']))}
        else: merged.append(o)
    res = []
    for o in merged:
        if o.get('output_type') == 'stream':
            text = terminal_text(_text(o['text']))
            if not text.strip(): continue
            if text != _text(o['text']): o = {**o, 'text': _lines(text)}
        res.append(o)
    return res

def collapse_progress(nb: dict):
    "Collapse progress-bar frames in every saved output of `nb` (and drop the state of widgets no output shows)."
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'] = collapse_outputs(c.get('outputs', []))
    shown = any('application/vnd.jupyter.widget-view+json' in o.get('data', {})
                for c in nb['cells'] for o in c.get('outputs', []))
    if not shown: nb.get('metadata', {}).pop('widgets', None)

# ---------------------------------------------------------------- "Try it" exercises
def _read_percent(path: Path) -> list[dict]:
    "The cells of the jupytext percent script at `path`, with their tags."
    import jupytext
    return [{'cell_type': c.cell_type, 'source': c.source, 'tags': c.metadata.get('tags', [])}
            for c in jupytext.read(path, fmt='py:percent').cells if c.source.strip()]

def exercise_cells(stem: str) -> list[dict] | None:
    "The cells of notebook `stem`'s exercises (`exercises/<stem>.py`), or None when it has none."
    path = EXERCISES/f'{stem}.py'
    return _read_percent(path) if path.exists() else None

def solution_cells(stem: str) -> list[str]:
    "The sources of the solutions in `solutions/<stem>.py`, one per exercise cell, in order (a header of comments is not one)."
    code = lambda s: any(l.strip() and not l.lstrip().startswith('#') for l in s.splitlines())
    return [c['source'] for c in _read_percent(SOLUTIONS/f'{stem}.py') if c['cell_type'] == 'code' and code(c['source'])]

def try_it_intro(stem: str) -> str:
    "The first cell of the section: what to do, and where the solutions are."
    return (f"{TRY_IT}\n\nA few exercises on what this notebook built. Run the next two cells first: they define "
            "`check`, which runs the asserts under it and tells you whether your answer works. For each exercise, "
            "replace `raise NotImplementedError` in the cell under it, run that cell, then its check cell.\n\n"
            f"The solutions are in [`solutions/{stem}.py`](../solutions/{stem}.py): look there only after trying.")

def _cell(stem: str, i: int, cell_type: str, source: str) -> dict:
    "A notebook cell with an id that depends only on where it is and what it holds (so `apply` is idempotent)."
    cid = hashlib.sha1(f'{stem}/{i}/{source}'.encode()).hexdigest()[:8]
    c = {'cell_type': cell_type, 'id': cid, 'metadata': {}, 'source': source}
    if cell_type == 'code': c.update(execution_count=None, outputs=[])
    return c

def try_it_section(stem: str, cells: list[dict]) -> list[dict]:
    "The notebook cells of the \"Try it\" section made from the exercise `cells`."
    srcs = [('markdown', try_it_intro(stem))] + [('code', c['source']) for c in _read_percent(EXERCISES/'_check.py')]
    srcs += [(c['cell_type'], c['source']) for c in cells]
    return [_cell(stem, i, t, s) for i, (t, s) in enumerate(srcs)]

def _try_it_start(nb: dict) -> int:
    "The index of the cell that opens the notebook's \"Try it\" section (the number of cells when there is none)."
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] == 'markdown' and _text(c['source']).startswith(TRY_IT): return i
    return len(nb['cells'])

def set_try_it(nb: dict, stem: str):
    "Append, or replace, the \"Try it\" section at the end of `nb` from `exercises/<stem>.py`."
    cells = exercise_cells(stem)
    if cells is None: return
    start = _try_it_start(nb)
    exported = [i for i, c in enumerate(nb['cells'][start:], start) if re.match(r'\s*#\|\s*export', _text(c['source']))]
    if exported: raise SystemExit(f"{stem}: cells {exported} after '{TRY_IT}' are exported; the section must come last")
    nb['cells'] = nb['cells'][:start] + try_it_section(stem, cells)

# ---------------------------------------------------------------- "Try it" names
def _code(src: str) -> str:
    "A cell's source as Python: IPython's `%magic` and `!shell` lines dropped."
    return '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())

def _top_bindings(tree) -> list:
    """The (name, node) pairs that the module-level statements of `tree` bind (as a cell binds names in the
    notebook's namespace: assignments, `def`, `class`, imports, `for`/`with ... as` targets), outside function bodies."""
    import ast
    out = []
    def visit(n):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.append((n.name, n)); return
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.extend(((a.asname or a.name.split('.')[0]), n) for a in n.names); return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): out.append((n.id, n))
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)): return
        for c in ast.iter_child_nodes(n): visit(c)
    for s in tree.body: visit(s)
    return out

def _scope_names(node) -> set[str]:
    "The names local to the function, lambda, class body or comprehension `node`: its parameters and what its own body binds."
    import ast
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    out = set()
    if not isinstance(node, ast.ClassDef):
        a = node.args
        out |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x is not None}
    body = node.body if isinstance(node.body, list) else [node.body]
    out |= {name for s in body for name, _ in _top_bindings(ast.Module(body=[s], type_ignores=[]))}
    out -= {name for s in ast.walk(node) if isinstance(s, (ast.Global, ast.Nonlocal)) for name in s.names}
    return out

def _used_names(tree) -> set[str]:
    """The global names `tree` binds or reads: at the top level, and in function bodies (a function defined above
    reads its globals when a later cell calls it); a function's own parameters and locals are not global names."""
    import ast
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    used = {name for name, _ in _top_bindings(tree)}
    def visit(n, local: frozenset):
        if isinstance(n, ast.Name) and n.id not in local: used.add(n.id)
        if isinstance(n, scopes):
            inner = local | _scope_names(n)
            for c in ast.iter_child_nodes(n):
                # defaults, decorators and the first iterable are evaluated outside the new scope
                outside = c in getattr(n, 'decorator_list', []) or c is getattr(n, 'args', None) or c in getattr(n, 'bases', [])
                visit(c, local if outside else inner)
            return
        for c in ast.iter_child_nodes(n): visit(c, local)
    visit(tree, frozenset())
    return used - {'*', '_'}

def _imported(node, name: str):
    "The object the import statement `node` binds to `name` (a sentinel when it cannot be imported here)."
    import ast, importlib
    try:
        for a in node.names:
            if (a.asname or a.name.split('.')[0]) != name: continue
            if isinstance(node, ast.Import): return importlib.import_module(a.name if a.asname else a.name.split('.')[0])
            mod = importlib.import_module('.' * node.level + (node.module or ''))
            return getattr(mod, a.name) if hasattr(mod, a.name) else importlib.import_module(f'{mod.__name__}.{a.name}')
    except Exception: pass
    return object()

def _is_check_block(stmt) -> bool:
    "Whether `stmt` is a `with check(...):` block of a check cell."
    import ast
    return isinstance(stmt, ast.With) and any(isinstance(w.context_expr, ast.Call) and getattr(w.context_expr.func, 'id', None) == 'check'
                                              for w in stmt.items)

def try_it_rebinds(nb: dict) -> list[str]:
    """The names the "Try it" section of `nb` binds that the notebook's own cells above it use, each with the cell
    that binds it. Run All runs the section last, so such a name would change under every cell above: running
    one again (a long demo with `FULL_RUN = True`) would use the exercise's `dls` or `train`. An import of the
    very object the notebook has under that name (`import torch` again) changes nothing and is allowed; a star
    import is never (it binds names no one reads in the cell): import the names, or use `import_missing`."""
    import ast
    start = _try_it_start(nb)
    if start == len(nb['cells']): return []
    def trees(cells):
        for i, c in cells:
            if c['cell_type'] != 'code': continue
            try: yield i, ast.parse(_code(_text(c['source'])))
            except SyntaxError: continue
    above = list(trees(enumerate(nb['cells'][:start])))
    used = set().union(*(_used_names(t) for _, t in above)) if above else set()
    imports = {}  # the last import statement above that binds each name
    for _, t in above:
        for name, node in _top_bindings(t):
            if isinstance(node, (ast.Import, ast.ImportFrom)): imports[name] = node
            else: imports.pop(name, None)
    found = []
    for i, t in trees(enumerate(nb['cells'][start:], start)):
        for n in ast.walk(t):
            if isinstance(n, ast.ImportFrom) and any(a.name == '*' for a in n.names):
                found.append(f"cell {i}: `from {n.module} import *` (it may replace names of the notebook; "
                             f"use `import_missing({n.module!r})`, which adds only names the notebook lacks)")
        body = [s for s in t.body if not _is_check_block(s)]  # `check` puts back every name its block binds
        for name, node in _top_bindings(ast.Module(body=body, type_ignores=[])):
            if name not in used: continue
            if isinstance(node, (ast.Import, ast.ImportFrom)) and name in imports and _imported(node, name) is _imported(imports[name], name): continue
            found.append(f"cell {i}: binds `{name}`, which the notebook's cells above use")
    return list(dict.fromkeys(found))

# ---------------------------------------------------------------- the course map
COURSE_TSV, README, INDEX = ROOT/'scripts'/'course.tsv', ROOT/'README.md', NBS/'index.ipynb'
MAP = '## The course map'

def course() -> list[tuple[str, str, str]]:
    "The course from `scripts/course.tsv`, in order: (notebook stem, the module it exports, what the student builds)."
    rows = [l.split('\t') for l in COURSE_TSV.read_text(encoding='utf-8').splitlines() if l.strip() and not l.startswith('#')]
    bad = [r[0] for r in rows if len(r) != 3]
    if bad: raise SystemExit(f"{COURSE_TSV.name}: rows {bad} need three tab-separated fields")
    return [tuple(r) for r in rows]

def _module(m: str) -> str: return m if m.startswith('(') else f'`{m}`'

def readme_table() -> str:
    "README.md's course table."
    rows = [f"| `nbs/{s}.ipynb` | {_module(m)} | {w} |" for s, m, w in course()]
    return '\n'.join(['| notebook | module | what it teaches |', '|---|---|---|'] + rows)

def course_map() -> str:
    "index.ipynb's course map: each notebook in order, a link that opens it in the Lab, and what it builds."
    items = [f"- [{s}]({s}.ipynb)" + ('' if m.startswith('(') else f" (`{m}`)") + f": {w}" for s, m, w in course()]
    return '\n'.join([MAP, '', "The notebooks in order; each builds on the ones before it. A name opens its notebook.", ''] + items)

def readme_text(text: str) -> str:
    "README.md's `text` with its course table written from `scripts/course.tsv`."
    lines = text.split('\n')
    i = next((i for i, l in enumerate(lines) if l.startswith('| notebook |')), None)
    if i is None: raise SystemExit("README.md has no course table (a line starting '| notebook |')")
    j = next((j for j in range(i, len(lines)) if not lines[j].startswith('|')), len(lines))
    return '\n'.join(lines[:i] + [readme_table()] + lines[j:])

def set_course_map(nb: dict):
    "Write index.ipynb's course map cell (the cell that starts with `MAP`) from `scripts/course.tsv`."
    hits = [c for c in nb['cells'] if c['cell_type'] == 'markdown' and _text(c['source']).startswith(MAP)]
    if len(hits) != 1: raise SystemExit(f"index.ipynb: {len(hits)} markdown cells start with {MAP!r}; it needs one")
    hits[0]['source'] = course_map()

def course_drift() -> list[str]:
    "What disagrees with `scripts/course.tsv`: notebooks it lacks or names wrongly, and README.md's table."
    listed, found = [s for s, _, _ in course()], [p.stem for p in stage_notebooks()]
    out = [f"{COURSE_TSV.name} lists {listed}, nbs/ holds {found}"] if listed != found else []
    if readme_text(README.read_text(encoding='utf-8')) != README.read_text(encoding='utf-8'):
        out.append("README.md: its course table differs from scripts/course.tsv")
    return out

# ---------------------------------------------------------------- apply / check
def _clean(nb: dict, path: Path):
    "What `nbdev_clean` does to `nb`, with this project's settings."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cfg = get_config(path=path.parent)
    clean_nb(nb, cfg.clear_all, cfg.get('allowed_metadata_keys').split(), cfg.get('allowed_cell_metadata_keys').split(), cfg.clean_ids)

def course_nb(path: Path) -> str:
    "The text of the notebook at `path` as `apply` leaves it."
    from execnb.nbio import read_nb, nb2str
    nb = read_nb(path)
    set_kernelspec(nb)
    if path.name == 'index.ipynb': set_course_map(nb)
    collapse_progress(nb)
    split_imports(nb, path.stem)
    set_try_it(nb, path.stem)
    _clean(nb, path)
    return nb2str(nb)

def apply(paths: list[Path]):
    "Bring every notebook in `paths` to the course's form, in place (`split_imports` included), and README.md's course table."
    readme = README.read_text(encoding='utf-8')
    if readme_text(readme) != readme: README.write_text(readme_text(readme), encoding='utf-8'); print("updated README.md")
    for p in paths:
        new = course_nb(p)
        if new != p.read_text(encoding='utf-8'):
            p.write_text(new, encoding='utf-8'); print(f"updated {os.path.relpath(p)}")

def output_paths(nb: dict) -> list[str]:
    "The absolute paths of a developer's machine (/work, /tmp, /root, /home) that `nb`'s outputs show."
    found = []
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            text = json.dumps({k: v for k, v in o.get('data', {}).items() if k.startswith('text')}) + _text(o.get('text', ''))
            found += [f'cell {i}: {m}' for m in sorted(set(DEV_PATH.findall(text)))]
    return found

def split_imports(nb: dict, stem: str):
    "Move the top-level imports of each cell that mixes them with other code into a cell of their own, just before it."
    import ast
    for i in reversed(mixed_import_cells(nb)):
        c, src = nb['cells'][i], _text(nb['cells'][i]['source'])
        try: tree = ast.parse(src)
        except SyntaxError: continue
        imps = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        if not imps: continue
        lines = src.splitlines()
        taken = {l for n in imps for l in range(n.lineno - 1, n.end_lineno)}
        dirs = [l for l in lines if l.startswith('#|')]
        rest = [l for j, l in enumerate(lines) if j not in taken]
        c['source'] = '\n'.join(rest).strip('\n')
        imp_src = '\n'.join(dirs + [lines[j] for j in sorted(taken)])
        nb['cells'].insert(i, _cell(stem, 1000 + i, 'code', imp_src))

def mixed_import_cells(nb: dict) -> list[int]:
    """The cells that mix an import with other code. nbdev runs every cell with an import when it builds the docs
    (`nbdev_proc_nbs`, `nbdev_readme`), so such a cell runs without the cells before it and warns or fails there."""
    import ast
    found = []
    for i, c in enumerate(nb['cells']):
        src = _text(c['source'])
        if c['cell_type'] != 'code' or re.search(r'^\s*#\|\s*(export|exporti|exports|exec_doc)\b|^\s*#\|\s*eval:\s*false', src, re.M): continue
        try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        nodes = list(ast.walk(tree))
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes):
            found.append(i)
    return found

def unguarded_slow_cells(nb: dict) -> list[int]:
    """The `#| slow` cells that run in full whatever the flag says. `nbdev_test` skips them but Run All runs them,
    so each must run its long part only `if FULL_RUN:` (see `guard`); then Run All runs every cell nbdev_test runs,
    the same way, and `make test` need not run both."""
    return [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and re.search(r'^#\|\s*slow\s*$', _text(c['source']), re.M)
            and f'if {FLAG}:' not in _text(c['source'])]

def check(paths: list[Path]) -> int:
    """Say which notebooks `apply` would change, show a developer's paths, mix imports, have unguarded slow cells or
    a "Try it" section that rebinds the notebook's names (and which have no exercises yet); 1 if any."""
    stale = [p for p in paths if course_nb(p) != p.read_text(encoding='utf-8')]
    nbs = {p: json.loads(p.read_text(encoding='utf-8')) for p in paths}
    shown = {p: output_paths(nb) for p, nb in nbs.items()}
    mixed = {p: mixed_import_cells(nb) for p, nb in nbs.items()}
    slow = {p: unguarded_slow_cells(nb) for p, nb in nbs.items()}
    rebinds = {p: try_it_rebinds(nb) for p, nb in nbs.items()}
    no_full = {p: missing_full_outputs(nb) for p, nb in nbs.items()}
    for p, cells in no_full.items():
        if cells: print(f"{os.path.relpath(p)}: long demos {cells} have no '{FULL_OUTPUT}' cell beside them, which Run All "
                        "would not overwrite: .venv/bin/python scripts/run_nb.py --full writes it")
    for p, found in rebinds.items():
        for f in found: print(f"{os.path.relpath(p)}: 'Try it' {f}: name it differently in exercises/{p.stem}.py, then apply")
    for p, cells in slow.items():
        if cells: print(f"{os.path.relpath(p)}: `#| slow` cells {cells} are not guarded: run their long part only `if {FLAG}:` (scripts/jupyter_course.py guard)")
    for p, cells in mixed.items():
        if cells: print(f"{os.path.relpath(p)}: cells {cells} mix imports with other code; give the imports a cell of their own")
    for p, found in shown.items():
        if found: print(f"{os.path.relpath(p)}: outputs show paths of the machine that ran it (print paths relative, or hide them): " + '; '.join(found[:5]))
    missing = [p.stem for p in paths if p.stem[:1].isdigit() and exercise_cells(p.stem) is None]
    if missing: print(f"no 'Try it' exercises yet (add exercises/<name>.py, see CONTRIBUTING.md): {', '.join(missing)}")
    for p in stale: print(f"{os.path.relpath(p)}: not in the course's form (kernelspec, progress frames, 'Try it' section or nbdev_clean)")
    if stale: print("fix: .venv/bin/python scripts/jupyter_course.py apply && .venv/bin/nbdev_export, then commit")
    drift = course_drift()
    for d in drift: print(f"{d}: fix: .venv/bin/python scripts/jupyter_course.py apply")
    return 1 if drift or stale or any(shown.values()) or any(mixed.values()) or any(slow.values()) or any(rebinds.values()) or any(no_full.values()) else 0

# ---------------------------------------------------------------- guards for long demos
FLAG = 'FULL_RUN'
FLAG_CELL = (f"{FLAG} = False  # True runs the long demos below in full (minutes); "
             "False keeps Run All short and leaves their saved outputs as they were")

def guard(nb: dict, stem: str, marker: str, minutes: int):
    """Guard the code cell of `nb` whose source contains `marker`: it runs in full only `if FULL_RUN:` (Run All,
    and `run_nb.py` without `--full`, print a line saying how to run it instead; `#| eval: false` is dropped).
    The flag cell goes before the first code cell that is neither imports nor exported."""
    cells = nb['cells']
    hits = [i for i, c in enumerate(cells) if c['cell_type'] == 'code' and marker in _text(c['source'])]
    if len(hits) != 1: raise SystemExit(f"{stem}: {len(hits)} code cells contain {marker!r}; give a marker that names one")
    c = cells[hits[0]]
    src = _text(c['source'])
    if f'if {FLAG}:' in src: return
    lines = src.splitlines()
    n_dir = next((i for i, l in enumerate(lines) if not l.startswith('#|')), len(lines))
    body = '\n'.join('    ' + l if l.strip() else l for l in lines[n_dir:])
    skip = (f'print("Skipped to keep Run All short: set {FLAG} = True at the top and run this cell again (about {minutes} min); '
            f'the output of a full run is below.")')
    dirs = [l for l in lines[:n_dir] if not re.match(r'#\|\s*eval:\s*false', l)]  # the flag replaces `eval: false`; `slow` stays
    c['source'] = '\n'.join(dirs + [f'if {FLAG}:', body, f'else: {skip}'])
    if not any(_text(x['source']).startswith(f'{FLAG} =') for x in cells):
        first = next(i for i, x in enumerate(cells) if x['cell_type'] == 'code' and not re.match(r'\s*#\|\s*(export|default_exp)', _text(x['source']))
                     and not all(l.startswith(('import ', 'from ', '#')) or not l.strip() for l in _text(x['source']).splitlines()))
        cells.insert(first, _cell(stem, -1, 'code', FLAG_CELL))

# ---------------------------------------------------------------- the output of a full run, beside its cell
FULL_OUTPUT = '**Output of a full run**'

def guarded_cells(nb: dict) -> list[int]:
    "The code cells of `nb` that run their long part only `if FULL_RUN:`."
    return [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and f'if {FLAG}:' in _text(c['source'])]

def is_full_output(c: dict) -> bool:
    "Whether cell `c` is the markdown cell that shows the output of a full run of the cell before it."
    return c['cell_type'] == 'markdown' and _text(c['source']).startswith(FULL_OUTPUT)

def full_output_cell(stem: str, outputs: list, took: str) -> dict:
    """A markdown cell showing `outputs` (what a cell printed and drew in a full run, which took `took`): text as a
    block, images as attachments. Run All never touches a markdown cell, so this stays when the cell says "Skipped"."""
    parts, att = [f"{FULL_OUTPUT} with `{FLAG} = True`, which took {took}. Run All leaves this cell as it is."], {}
    for o in outputs:
        data = o.get('data', {})
        if o.get('output_type') == 'stream': text = _text(o['text'])
        elif 'image/png' in data:
            name = f'full_run_{len(att) + 1}.png'
            att[name] = {'image/png': _text(data['image/png']).replace('\n', '')}
            parts.append(f'![{name}](attachment:{name})'); continue
        elif 'text/plain' in data and not _text(data['text/plain']).startswith('<Figure'): text = _text(data['text/plain'])
        else: continue
        if text.strip(): parts.append('```text\n' + terminal_text(text).strip('\n') + '\n```')
    c = _cell(stem, -2, 'markdown', '\n\n'.join(parts))
    if att: c['attachments'] = att
    return c

def set_full_output(nb: dict, stem: str, i: int, outputs: list, took: str):
    "Put the output of a full run of cell `i` in the markdown cell right after it (made, or replaced)."
    new = full_output_cell(stem, outputs, took)
    cells = nb['cells']
    if i + 1 < len(cells) and is_full_output(cells[i + 1]): new['id'] = cells[i + 1].get('id', new['id']); cells[i + 1] = new
    else: cells.insert(i + 1, new)

def missing_full_outputs(nb: dict) -> list[int]:
    "The guarded cells of `nb` with no full run's output beside them (a markdown cell that starts with `FULL_OUTPUT`)."
    cells = nb['cells']
    return [i for i in guarded_cells(nb) if not (i + 1 < len(cells) and is_full_output(cells[i + 1]))]

def _took(seconds: float) -> str:
    "`seconds` as a reader says it: '40 s', '2 min 10 s'."
    m, s = divmod(round(seconds), 60)
    return f'{s} s' if not m else f'{m} min' + (f' {s} s' if s else '')

# A tiny setting for the long demos: every DataLoader has two batches (at most), then the flag is set.
TINY_RUN = f'''import itertools, minitrain.data
_full_iter, _full_len = minitrain.data.DataLoader.__iter__, minitrain.data.DataLoader.__len__
minitrain.data.DataLoader.__iter__ = lambda self: itertools.islice(_full_iter(self), 2)
minitrain.data.DataLoader.__len__ = lambda self: min(_full_len(self), 2)
{FLAG} = True'''

def long_demo_cells(nb) -> list[int]:
    "The cells a full run changes: every code cell from the first one after the flag cell that reads the flag, up to \"Try it\"."
    code = [i for i, c in enumerate(nb['cells'][:_try_it_start(nb)]) if c['cell_type'] == 'code']
    uses = [i for i in code if FLAG in _text(nb['cells'][i]['source']) and not _text(nb['cells'][i]['source']).startswith(f'{FLAG} =')]
    return [i for i in code if uses and i >= uses[0]]

def rerun_after_run_all(path: Path, limit: float = 600) -> list[str]:
    """Run All on the notebook at `path`, then, in the same kernel, what a student does next: set `FULL_RUN = True` and
    run the long demos again (each cell from the first that reads the flag, up to "Try it"), with a tiny setting
    (`TINY_RUN`: two batches per epoch). The errors of those cells; an `AssertionError` is not one (a tiny run
    cannot reach a full run's accuracy), any other error is: a name the "Try it" section changed, or a broken demo."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=int(limit), allow_errors=False,
                            resources={'metadata': {'path': str(path.parent)}})
    errors = []
    with client.setup_kernel():
        for i, c in enumerate(nb.cells):
            if c.cell_type != 'code': continue
            try: client.execute_cell(c, i)
            except CellExecutionError as e: errors.append(f'Run All, cell {i}: {e.ename}: {e.evalue[:300]}')
        again = long_demo_cells(nb)
        nb.cells.append(nbformat.v4.new_code_cell(TINY_RUN))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        for i in again:
            try: client.execute_cell(nb.cells[i], i)
            except CellExecutionError as e:
                if e.ename != 'AssertionError': errors.append(f'again with {FLAG} = True, cell {i}: {e.ename}: {e.evalue[:300]}')
    return errors

def as_listing(nb: dict, stem: str, marker: str):
    """Turn the code cell of `nb` holding `marker` into a markdown cell showing it as a listing: for a script
    the notebook shows but must not run itself (a `train.py` for `torchrun`), which Run All would run."""
    hits = [i for i, c in enumerate(nb['cells']) if marker in _text(c['source'])]
    if len(hits) != 1: raise SystemExit(f"{stem}: {len(hits)} cells contain {marker!r}; give a marker that names one")
    c = nb['cells'][hits[0]]
    if c['cell_type'] == 'markdown': return
    code = '\n'.join(l for l in _text(c['source']).splitlines() if not l.startswith('#|'))
    nb['cells'][hits[0]] = {'cell_type': 'markdown', 'id': c.get('id', ''), 'metadata': {}, 'source': f'```python\n{code}\n```'}

# ---------------------------------------------------------------- install
_HOOK_CONFIG = '''# Written by `scripts/jupyter_course.py install` (make lab / make test): before JupyterLab saves a notebook
# of this course, collapse progress-bar frames, name the kernel, and clean it as nbdev_clean does.
import sys, warnings
sys.path.insert(0, {scripts!r})
from jupyter_course import pre_save_hook, course_contents_manager
c.FileContentsManager.pre_save_hook = pre_save_hook
# Notebooks are served with the `language_info` the kernel reports, so opening one does not mark it modified.
c.ServerApp.contents_manager_class = course_contents_manager()
# Each server extension that loads config (notebook_shim, jupytext's) applies this setting again to the same
# contents manager, and jupyter_server warns at each "Overriding existing pre_save_hook" with the same hook.
warnings.filterwarnings('ignore', message=r'Overriding existing pre_save_hook \\(pre_save_hook\\) with a new one \\(pre_save_hook\\)')
# One kernel in the Launcher and the kernel menus: the course's, this venv's Python (not also ipykernel's "python3").
c.KernelSpecManager.ensure_native_kernel = False
c.KernelSpecManager.allowed_kernelspecs = {{{kernel!r}}}
c.MultiKernelManager.default_kernel_name = {kernel!r}
'''

def pre_save_hook(model, path, contents_manager, **kwargs):
    "Jupyter's pre-save hook: a notebook under `nbs/` is saved in the course's form (no frames, our kernel, nbdev-clean)."
    if model.get('type') != 'notebook' or model['content'].get('nbformat') != 4: return
    full = Path(contents_manager.root_dir, path).resolve()
    if NBS.resolve() not in full.parents: return
    nb = model['content']
    set_kernelspec(nb)
    collapse_progress(nb)
    _clean(nb, full)

def kernel_language_info() -> dict:
    "The `language_info` the course's kernel (this venv's Python, by ipykernel) reports, as JupyterLab writes it in a notebook."
    from ipykernel.ipkernel import IPythonKernel
    return dict(IPythonKernel.language_info)

def serve_notebook(model: dict):
    """Give a notebook of the course's kernel, as the server sends it to JupyterLab, the `language_info` that kernel reports.
    JupyterLab writes that into a notebook's metadata once the kernel starts, and a change of metadata marks the
    notebook modified; nbdev_clean (and the save hook) drop it, so the notebooks in git never hold it."""
    nb = model.get('content') if model.get('type') == 'notebook' else None
    if not isinstance(nb, dict): return
    meta = nb.setdefault('metadata', {})
    if meta.get('kernelspec', {}).get('name') == KERNEL and 'language_info' not in meta: meta['language_info'] = kernel_language_info()

def course_contents_manager():
    "JupyterLab's default contents manager, serving the course's notebooks through `serve_notebook`."
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    class CourseContentsManager(AsyncLargeFileManager):
        "Jupyter's file contents manager, with `language_info` in the course's notebooks as it sends them."
        async def get(self, path, content=True, type=None, format=None, **kwargs):
            model = await super().get(path, content=content, type=type, format=format, **kwargs)
            serve_notebook(model)
            return model
    return CourseContentsManager

def install():
    "Register the kernel `minitrain` for this venv's Python, inside the venv, and the save hook in the venv's Jupyter config."
    if sys.prefix == sys.base_prefix: raise SystemExit("run this with the project's venv: .venv/bin/python scripts/jupyter_course.py install")
    subprocess.run([sys.executable, '-m', 'ipykernel', 'install', '--sys-prefix', '--name', KERNEL, '--display-name', KERNEL],
                   check=True, stdout=subprocess.DEVNULL)
    cfg = Path(sys.prefix)/'etc'/'jupyter'/'jupyter_server_config.py'
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(_HOOK_CONFIG.format(scripts=str(ROOT/'scripts'), kernel=KERNEL))
    print(f"kernel {KERNEL!r} -> {sys.executable}; save hook in {cfg}")

# ---------------------------------------------------------------- Run All
def _repo_changes() -> set[str]:
    "Files git sees as changed or new (not ignored) in the repository."
    out = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())

def run_all(path: Path, limit: float = RUN_ALL_LIMIT) -> dict:
    "Execute every cell of the notebook at `path` (`eval: false` and `slow` ones too) in a fresh kernel, as Jupyter's Run All does."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    before = _repo_changes()
    with tempfile.TemporaryFile('w+') as log:
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=int(limit), allow_errors=True,
                                resources={'metadata': {'path': str(path.parent)}})
        t0 = time.perf_counter()
        try: client.execute(stderr=log)  # the kernel's own stderr (not the cells' outputs)
        except Exception as e: failure = f'{type(e).__name__}: {e}'
        else: failure = None
        seconds = time.perf_counter() - t0
    res = {'notebook': path.name, 'seconds': round(seconds, 1), 'failure': failure, 'errors': [], 'dev_paths': [],
           'written': sorted(_repo_changes() - before)}
    res['errors'] = [f'cell {i}: {o.ename}: {o.evalue[:200]}' for i, c in enumerate(nb.cells)
                     for o in c.get('outputs', []) if o.output_type == 'error']
    res['dev_paths'] = output_paths(nb)
    res['slow_cells'] = slow_cells(nb)
    return res

def slow_cells(nb, at_least: float = 10.) -> list[str]:
    "The cells of the executed `nb` that took `at_least` seconds, slowest first (from nbclient's timings)."
    from datetime import datetime
    t = lambda c, k: datetime.fromisoformat(c.metadata['execution'][k].replace('Z', '+00:00'))
    took = [((t(c, 'shell.execute_reply') - t(c, 'iopub.execute_input')).total_seconds(), i) for i, c in enumerate(nb.cells)
            if 'shell.execute_reply' in c.get('metadata', {}).get('execution', {})]
    return [f'cell {i}: {s:.0f} s' for s, i in sorted(took, reverse=True) if s >= at_least]

def violations(res: dict, limit: float = RUN_ALL_LIMIT) -> list[str]:
    "What in the Run All result `res` breaks the rules."
    v = [f"did not finish: {res['failure']}"] if res['failure'] else []
    if res['seconds'] > limit: v.append(f"took {res['seconds']:.0f} s, over {limit} s")
    v += [f'error output, {e}' for e in res['errors']]
    v += [f'developer path in an output, {p}' for p in res['dev_paths']]
    v += [f'wrote inside the repo: {w}' for w in res['written']]
    return v

def run_all_report(paths: list[Path], jobs: int = 1) -> int:
    """Run All on each notebook of `paths`, `jobs` kernels at a time, printing each one's time and what breaks the
    rules as it finishes; 1 if any does. With several jobs each kernel gets one thread (`OMP_NUM_THREADS=1`): torch's
    threads wait for each other by spinning, so two kernels of two threads on two cores waste much of the time.
    A file written inside the repo is then blamed on every notebook that was running when it appeared."""
    from concurrent.futures import ProcessPoolExecutor
    t0, bad = time.perf_counter(), 0
    env = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'} if jobs > 1 else {}
    with ProcessPoolExecutor(jobs, initializer=os.environ.update, initargs=(env,)) as pool:
        for res in pool.map(run_all, paths):
            v = violations(res); bad += bool(v)
            print(f"{res['notebook']}: {res['seconds']:.0f} s (slow cells: {', '.join(res['slow_cells']) or 'none'})"
                  + ''.join(f'\n  {x}' for x in v), flush=True)
    print(f"Run All of {len(paths)} notebooks, {jobs} at a time: {time.perf_counter() - t0:.0f} s; "
          + (f"{bad} broke the rules" if bad else "all within the rules"))
    return 1 if bad else 0

def _paths(args: list[str], run=False) -> list[Path]:
    return [Path(a).resolve() for a in args] or (stage_notebooks() if run else course_notebooks())

if __name__ == '__main__':
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ('', [])
    if cmd == 'install': install()
    elif cmd == 'apply': apply(_paths(args))
    elif cmd == 'check': sys.exit(check(_paths(args)))
    elif cmd in ('guard', 'listing'):  # guard NB.ipynb "marker" MINUTES | listing NB.ipynb "marker"
        from execnb.nbio import read_nb, write_nb
        p = Path(args[0]); nb = read_nb(p)
        guard(nb, p.stem, args[1], int(args[2])) if cmd == 'guard' else as_listing(nb, p.stem, args[1])
        write_nb(nb, p); print(f"{cmd}: {os.path.relpath(p)}: {args[1]!r}")
    elif cmd == 'rerun':  # rerun NB.ipynb ..: Run All, then the long demos again with FULL_RUN = True, tiny
        errs = {p: rerun_after_run_all(p) for p in _paths(args, run=True)}
        for p, e in errs.items(): print(f"{p.name}: " + ('; '.join(e) or 'every long demo runs again after Run All'))
        sys.exit(1 if any(errs.values()) else 0)
    elif cmd == 'run-all':  # run-all [--jobs N] [NB.ipynb ..]
        jobs = int(args[args.index('--jobs') + 1]) if '--jobs' in args else 1
        if '--jobs' in args: del args[args.index('--jobs'):args.index('--jobs') + 2]
        sys.exit(run_all_report(_paths(args, run=True), jobs))
    else: raise SystemExit(__doc__)
