"The course in Jupyter: collapsing progress-bar frames, the kernelspec, the save hook, the Try it section."
import copy, os, subprocess, sys
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
