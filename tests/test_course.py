"The course in Jupyter: collapsing progress-bar frames, the kernelspec, the save hook, the Try it section."
import copy, json, os, re, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'scripts'))
import jupyter_course as jc

def stream(text, name='stderr'): return {'output_type': 'stream', 'name': name, 'text': text}

def test_terminal_text_keeps_each_bars_last_frame():
    frames = '\r  0%|          | 0/3 [00:00<?, ?it/s]\r 33%|###3      | 1/3 [00:00<00:01]  \r100%|##########| 3/3 [00:01<00:00]   \n'
    assert jc.terminal_text(frames) == '100%|##########| 3/3 [00:01<00:00]\n'
    assert jc.terminal_text('abcdef\rxy') == 'xycdef', "a carriage return overwrites only what it writes over"
    assert jc.terminal_text('plain\ntext\n') == 'plain\ntext\n', "text without carriage returns is left alone"

def test_a_bar_that_erased_itself_leaves_nothing():
    erased = '\repoch 0 train:  50%|#####     | 1/2\r                                   \r'
    assert jc.collapse_outputs([stream(erased)]) == []

def test_collapse_merges_streams_and_keeps_the_table():
    outs = [stream('\r 50%|#####| 1/2'), stream('\r100%|#####| 2/2\n'),
            stream('loss  epoch\n', 'stdout'), stream(['0.5  0\n'], 'stdout'),
            {'output_type': 'display_data', 'metadata': {},
             'data': {'application/vnd.jupyter.widget-view+json': {'model_id': 'ab'}, 'text/plain': ' 40%|####  | 2/5 [00:01<00:02]'}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': 'a plot'}}]
    got = jc.collapse_outputs(copy.deepcopy(outs))
    assert [(o['output_type'], ''.join(o.get('text', '')) or o['data']['text/plain']) for o in got] == [
        ('stream', '100%|#####| 2/2\n'), ('stream', 'loss  epoch\n0.5  0\n'), ('display_data', 'a plot')]
    assert all(isinstance(o['text'], list) for o in got if 'text' in o), "stream text stays a list of lines, as nbformat writes it"

def test_collapse_progress_drops_widget_state_nobody_shows():
    nb = {'metadata': {'widgets': {'state': {}}}, 'cells': [{'cell_type': 'code', 'source': '', 'outputs': [stream('\r1/2\r2/2\n')]}]}
    jc.collapse_progress(nb)
    assert 'widgets' not in nb['metadata'] and nb['cells'][0]['outputs'][0]['text'] == ['2/2\n']

def test_kernel_spec():
    nb = {'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3'}}}
    jc.set_kernelspec(nb)
    assert nb['metadata']['kernelspec'] == {'name': 'minitrain', 'display_name': 'minitrain', 'language': 'python'}

def test_save_hook_cleans_a_notebook_saved_from_jupyter(tmp_path):
    path = jc.NBS/'04_learner.ipynb'
    nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {'language_info': {'name': 'python'}},
          'cells': [{'cell_type': 'code', 'id': 'x', 'metadata': {'scrolled': True}, 'execution_count': 3, 'source': 'fit()',
                     'outputs': [stream('\r 1/2\r 2/2\n'), stream('\r 1/2\r    \r')]}]}
    model = {'type': 'notebook', 'content': nb}
    jc.pre_save_hook(model, path.name, SimpleNamespace(root_dir=str(jc.NBS)))
    cell = nb['cells'][0]
    assert nb['metadata'] == {'kernelspec': jc.KERNELSPEC | {'display_name': 'minitrain'}}
    assert cell['execution_count'] is None and cell['metadata'] == {} and cell['outputs'][0]['text'] == [' 2/2\n']
    elsewhere = {'type': 'notebook', 'content': copy.deepcopy(nb) | {'metadata': {}}}
    jc.pre_save_hook(elsewhere, 'x.ipynb', SimpleNamespace(root_dir=str(tmp_path)))
    assert elsewhere['content']['metadata'] == {}, "notebooks outside nbs/ are left alone"

def test_try_it_section_is_appended_once_and_replaced(monkeypatch):
    stem = '04_learner'
    nb = {'cells': [{'cell_type': 'markdown', 'id': 'a', 'metadata': {}, 'source': '# Learner'}]}
    jc.set_try_it(nb, stem)
    first = copy.deepcopy(nb)
    assert first['cells'][1]['source'].startswith(jc.TRY_IT) and f'solutions/{stem}.py' in first['cells'][1]['source']
    jc.set_try_it(nb, stem)
    assert nb == first, "apply is idempotent"
    nb['cells'].append({'cell_type': 'code', 'id': 'b', 'metadata': {}, 'source': '#| export\nx = 1', 'outputs': []})
    with pytest.raises(SystemExit, match='exported'): jc.set_try_it(nb, stem)

def test_output_paths_finds_developer_paths():
    nb = {'cells': [{'cell_type': 'code', 'outputs': [stream('saved to /tmp/tmpab12/model.pth\n', 'stdout'),
                                                      stream('see ~/x and nbs/a/work/b\n', 'stdout'),
                                                      stream('/tmp/ipykernel_321/4123749477.py:9: UserWarning\n')]}]}
    assert jc.output_paths(nb) == ['cell 0: /tmp/tmpab12/model.pth'], "a real kernel's name for a cell is no developer path"

def test_guard_runs_a_long_demo_only_with_the_flag():
    code = lambda s: {'cell_type': 'code', 'id': s[:4], 'metadata': {}, 'source': s, 'outputs': [], 'execution_count': None}
    nb = {'cells': [code('#| default_exp x'), code('import torch'), code('x = 1'), code('#| slow\n#| eval: false\nlearn.fit(5)\n\nprint(1)')]}
    jc.guard(nb, 'nb', 'learn.fit(5)', 3)
    again = copy.deepcopy(nb); jc.guard(again, 'nb', 'learn.fit(5)', 3)
    assert again == nb, "guard is idempotent"
    srcs = [c['source'] for c in nb['cells']]
    assert srcs[2].startswith('FULL_RUN = False') and srcs[3] == 'x = 1', "the flag cell comes after the imports"
    assert srcs[4].startswith('#| slow\nif FULL_RUN:\n    learn.fit(5)\n\n    print(1)\nelse: print(')
    for full in (False, True):
        out = []
        ns = {'learn': SimpleNamespace(fit=lambda n: out.append(f'fit {n}')), 'print': lambda *a: out.append(' '.join(map(str, a)))}
        exec(srcs[2].replace('False', str(full), 1), ns); exec(srcs[4].split('\n', 1)[1], ns)
        assert out == (['fit 5', '1'] if full else [out[0]]) and (full or 'set FULL_RUN = True' in out[0]), out
    with pytest.raises(SystemExit, match='0 code cells'): jc.guard(nb, 'nb', 'no such code', 1)
    nb['cells'].append(code('#| slow\nlearn.fit(50)'))
    assert jc.unguarded_slow_cells(nb) == [5], "a slow cell without the flag would run in full under Run All"

@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="not in a virtual environment")
def test_pip_in_the_venv_honours_the_constraints():
    "The venv's pip.conf names constraints.txt, so no pip run inside it (nbdev_install, nbdev_docs) can swap torch."
    r = subprocess.run([sys.executable, '-m', 'pip', 'config', 'get', 'global.constraint'], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != 'PIP_CONSTRAINT'})
    assert r.returncode == 0 and Path(r.stdout.strip()) == jc.ROOT/'constraints.txt', \
        f"pip config: {r.stdout or r.stderr}; rebuild the venv (make clean test) so make writes .venv/pip.conf"
    assert Path(sys.prefix, 'pip.conf').exists()

@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="not in a virtual environment")
def test_the_kernel_is_the_venvs_python():
    import json
    spec = Path(sys.prefix)/'share'/'jupyter'/'kernels'/jc.KERNEL/'kernel.json'
    assert spec.exists(), "run .venv/bin/python scripts/jupyter_course.py install (make test does)"
    assert Path(json.loads(spec.read_text())['argv'][0]) == Path(sys.executable)

def test_listing_shows_a_script_without_running_it():
    nb = {'cells': [{'cell_type': 'code', 'id': 'ab', 'metadata': {}, 'source': '#| eval: false\n# train.py\nlearn.fit(3)', 'outputs': []}]}
    jc.as_listing(nb, 'nb', '# train.py')
    assert nb['cells'] == [{'cell_type': 'markdown', 'id': 'ab', 'metadata': {}, 'source': '```python\n# train.py\nlearn.fit(3)\n```'}]
    jc.as_listing(nb, 'nb', '# train.py')
    assert nb['cells'][0]['cell_type'] == 'markdown', "idempotent"

def test_split_imports_gives_imports_their_own_cell():
    code = lambda s: {'cell_type': 'code', 'id': s[:3], 'metadata': {}, 'source': s, 'outputs': []}
    nb = {'cells': [code('x = 1\nimport matplotlib.pyplot as plt\nplt.plot([x])'), code('import torch'),
                    code('def f():\n    import os\n    sep = os.sep\n    return sep')]}
    jc.split_imports(nb, 'nb')
    assert [c['source'] for c in nb['cells']] == ['import matplotlib.pyplot as plt', 'x = 1\nplt.plot([x])', 'import torch',
                                                  'def f():\n    import os\n    sep = os.sep\n    return sep']
    assert jc.mixed_import_cells(nb) == [3], "an import inside a function cannot move: check still reports it"

def test_the_course_map_and_the_readme_table_come_from_one_source(monkeypatch, tmp_path):
    rows = jc.course()
    assert [s for s, _, _ in rows] == [p.stem for p in jc.stage_notebooks()], "scripts/course.tsv lists every notebook, in order"
    index = json.loads(jc.INDEX.read_text(encoding='utf-8'))
    maps = [''.join(c['source']) for c in index['cells'] if ''.join(c['source']).startswith(jc.MAP)]
    assert maps == [jc.course_map()] and jc.readme_table() in jc.README.read_text(encoding='utf-8')
    for s, m, w in rows: assert f'[{s}]({s}.ipynb)' in maps[0] and w in maps[0] and f'`nbs/{s}.ipynb`' in jc.readme_table()
    assert jc.course_drift() == []
    readme = tmp_path/'README.md'
    readme.write_text(jc.README.read_text(encoding='utf-8').replace('| `nbs/04_learner.ipynb` | `minitrain.learner` | the',
                                                                    '| `nbs/04_learner.ipynb` | `minitrain.learner` | a'))
    monkeypatch.setattr(jc, 'README', readme)
    assert jc.course_drift() == ["README.md: its course table differs from scripts/course.tsv"], "check fails on drift"
    jc.apply([])
    assert jc.course_drift() == [] and jc.readme_table() in readme.read_text(), "apply writes the table back"

def _links(nb_path: Path) -> list[str]:
    "The relative links of the markdown cells of the notebook at `nb_path`."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    return [l for c in nb['cells'] if c['cell_type'] == 'markdown'
            for l in re.findall(r'\]\(([^)\s]+)\)', ''.join(c['source'])) if not re.match(r'[a-z]+:|#', l)]

def lab_open_args() -> list[str]:
    "The options `make lab` starts JupyterLab with (the Makefile's LAB_OPEN)."
    line = next(l for l in (jc.ROOT/'Makefile').read_text().splitlines() if l.startswith('LAB_OPEN :='))
    return line.split(':=', 1)[1].split()

def test_every_link_of_the_course_opens_a_file_in_the_lab():
    "The Lab's root is the repository, so a link from a notebook to solutions/ (or anywhere in the repo) opens its file."
    args = dict(a.lstrip('-').split('=', 1) for a in lab_open_args())
    assert args['ServerApp.root_dir'] == '.', "make lab serves the repository's root"
    root = jc.ROOT
    assert (root/args['LabApp.default_url'].removeprefix('/lab/tree/')).resolve() == jc.INDEX, "and opens on the course map"
    solutions = {}
    for nb in jc.course_notebooks():
        for link in _links(nb):
            target = (nb.parent/link).resolve()
            assert root in target.parents and target.is_file(), f"{nb.name}: {link} opens nothing from the Lab's root"
            if 'solutions/' in link: solutions[nb.stem] = target
    with_exercises = [p.stem for p in jc.stage_notebooks() if jc.exercise_cells(p.stem) is not None]
    assert sorted(solutions) == with_exercises and all(t.name == f'{s}.py' for s, t in solutions.items())
    assert len([l for l in _links(jc.INDEX) if l.endswith('.ipynb')]) == len(jc.stage_notebooks())

def test_the_lab_config_offers_one_kernel_and_does_not_warn_of_the_same_hook():
    import warnings
    from traitlets.config import Config
    pytest.importorskip('jupyter_server')
    c = Config()
    text = jc._HOOK_CONFIG.format(scripts=str(jc.ROOT/'scripts'), kernel=jc.KERNEL)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        exec(text, {'c': c})
        warnings.warn("Overriding existing pre_save_hook (pre_save_hook) with a new one (pre_save_hook).", UserWarning)
        warnings.warn("Overriding existing pre_save_hook (pre_save_hook) with a new one (other_hook).", UserWarning)
    assert [str(w.message) for w in seen] == ["Overriding existing pre_save_hook (pre_save_hook) with a new one (other_hook)."]
    assert c.KernelSpecManager.allowed_kernelspecs == {'minitrain'} and c.KernelSpecManager.ensure_native_kernel is False
    assert c.MultiKernelManager.default_kernel_name == 'minitrain' and c.FileContentsManager.pre_save_hook is jc.pre_save_hook

def test_a_notebook_is_served_with_its_kernels_language_info_and_saved_without():
    "JupyterLab writes the kernel's language_info into a notebook it opens (marking it modified) unless it is there."
    pytest.importorskip('ipykernel')
    path = jc.NBS/'04_learner.ipynb'
    disk = json.loads(path.read_text(encoding='utf-8'))
    model = {'type': 'notebook', 'content': copy.deepcopy(disk)}
    jc.serve_notebook(model)
    info = model['content']['metadata']['language_info']
    assert info['name'] == 'python' and info['version'] == '.'.join(map(str, sys.version_info[:3]))
    jc.pre_save_hook(model, path.name, SimpleNamespace(root_dir=str(jc.NBS)))
    assert model['content']['metadata'] == disk['metadata'], "saving drops it again, as nbdev_clean does"
    other = {'type': 'notebook', 'content': {'metadata': {'kernelspec': {'name': 'julia'}}, 'cells': []}}
    jc.serve_notebook(other)
    assert 'language_info' not in other['content']['metadata'], "only the course's kernel's notebooks"

def test_a_try_it_section_may_not_rebind_the_notebooks_names():
    code = lambda s: {'cell_type': 'code', 'id': 'x', 'metadata': {}, 'source': s, 'outputs': [], 'execution_count': None}
    md = lambda s: {'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': s}
    above = [code('import torch\nfrom torch import nn\ndls = 1\ndef train(x):\n    for i in range(3): pass\n    return get_dls(x)'),
             code('%time y = [k for k in range(3)]')]
    ok = [md(jc.TRY_IT), code('import torch\nimport torch.nn as nn'), code("import_missing('minitrain.all')"),
          code('tiny_dls, i, k, x = 2, 3, 4, 5\ndef CountCB(): pass'), code("with check('CountCB'):\n    dls = train = 3")]
    assert jc.try_it_rebinds({'cells': above + ok}) == []  # same objects, locals of functions above, names a check puts back
    bad = [md(jc.TRY_IT), code('from minitrain.all import *'), code('dls = 2'), code('def get_dls(): pass'), code('import numpy as torch')]
    found = jc.try_it_rebinds({'cells': above + bad})
    assert [f.split(':')[0] for f in found] == ['cell 3', 'cell 4', 'cell 5', 'cell 6'], found
    assert 'import_missing' in found[0] and '`dls`' in found[1] and '`get_dls`' in found[2] and '`torch`' in found[3]

def test_check_puts_back_the_names_its_block_binds_and_import_missing_keeps_the_notebooks():
    srcs = [c['source'] for c in jc._read_percent(jc.EXERCISES/'_check.py')]
    ns = {'__name__': '__main__'}
    for s in srcs: exec(s, ns)
    ns.update(dls='mine', Learner='mine')
    exec("import_missing('minitrain.all')\nwith check('x'):\n    dls = 1; new = 2\n    assert dls == 1", ns)
    assert ns['dls'] == ns['Learner'] == 'mine' and 'new' not in ns and 'DataLoaders' in ns

FULL_RUN_NBS = [p.name for p in jc.stage_notebooks() if jc.long_demo_cells(json.loads(p.read_text(encoding='utf-8')))]

def _kernel_installed() -> bool:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
        return jc.KERNEL in KernelSpecManager().find_kernel_specs()
    except Exception: return False

@pytest.mark.skipif(not _kernel_installed(), reason="the minitrain kernel is not installed (make lab or make test installs it)")
@pytest.mark.parametrize('name', FULL_RUN_NBS)
def test_long_demos_run_again_after_run_all(name):
    "After Run All (its \"Try it\" section last), `FULL_RUN = True` and the long demos again, in the same kernel, tiny."
    assert jc.rerun_after_run_all(jc.NBS/name) == []

def test_the_output_of_a_full_run_sits_in_a_markdown_cell_beside_its_cell():
    code = lambda s: {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'source': s, 'outputs': [], 'execution_count': None}
    nb = {'cells': [code('FULL_RUN = False'), code('if FULL_RUN:\n    learn.fit(3)\nelse: print("Skipped")'), code('x = 1')]}
    assert jc.missing_full_outputs(nb) == [1], "a guarded cell needs its full run's output beside it"
    outs = [stream('epoch 0\repoch 1\n', 'stdout'), {'output_type': 'display_data', 'metadata': {},
            'data': {'image/png': 'iVBORw0KGgo=\n', 'text/plain': '<Figure size 600x350 with 1 Axes>'}}]
    jc.set_full_output(nb, 'x', 1, outs, '2 min')
    md = nb['cells'][2]
    assert md['cell_type'] == 'markdown' and md['source'].startswith(jc.FULL_OUTPUT) and 'took 2 min' in md['source']
    assert '```text\nepoch 1\n```' in md['source'] and '![full_run_1.png](attachment:full_run_1.png)' in md['source']
    assert md['attachments'] == {'full_run_1.png': {'image/png': 'iVBORw0KGgo='}} and jc.missing_full_outputs(nb) == []
    jc.set_full_output(nb, 'x', 1, outs[:1], '3 min')
    assert len(nb['cells']) == 4 and 'took 3 min' in nb['cells'][2]['source'] and 'attachments' not in nb['cells'][2], "replaced, not added"
    assert jc.output_paths({'cells': [{'outputs': [stream("Path('/tmp/minitrain-16_x-ab12/train/a.jpg')")]}]}) == []
