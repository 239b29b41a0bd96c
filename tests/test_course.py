"The course in Jupyter: collapsing progress-bar frames, the kernelspec, the save hook, the Try it section."
import copy, sys
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
                                                      stream('see ~/x and nbs/a/work/b\n', 'stdout')]}]}
    assert jc.output_paths(nb) == ['cell 0: /tmp/tmpab12/model.pth']
