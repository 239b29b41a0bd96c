"The \"Try it\" exercises: each check cell passes with the solution and says \"not yet\" with the stub."
import contextlib, io, linecache, re, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'scripts'))
import jupyter_course as jc

STEMS = sorted(p.stem for p in jc.EXERCISES.glob('[0-9]*.py'))

def run_cells(srcs) -> str:
    "Run the cell sources `srcs` in one fresh namespace, each under its own name as a notebook does; return what they printed."
    ns, out = {'__name__': '__main__'}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, s in enumerate(srcs):
            name = f'<cell {i}>'
            linecache.cache[name] = (len(s), None, s.splitlines(keepends=True), name)  # as IPython does, for tracebacks
            exec(compile(s, name, 'exec'), ns)
    return out.getvalue()

def section(stem, with_solutions: bool) -> tuple[list[str], int]:
    "The code of `stem`'s section (the exercise cells replaced by the solutions when `with_solutions`) and its number of checks."
    cells, sols = jc.exercise_cells(stem), iter(jc.solution_cells(stem))
    srcs = [c['source'] for c in jc._read_percent(jc.EXERCISES/'_check.py')]
    for c in cells:
        if c['cell_type'] != 'code': continue
        srcs.append(next(sols) if with_solutions and 'exercise' in c['tags'] else c['source'])
    return srcs, sum('check' in c['tags'] for c in cells)

def test_every_exercise_file_has_a_notebook():
    assert STEMS, "no exercises found"
    assert [s for s in STEMS if not (jc.NBS/f'{s}.ipynb').exists()] == []

@pytest.mark.parametrize('stem', STEMS)
def test_layout(stem):
    cells = [c for c in jc.exercise_cells(stem) if c['cell_type'] == 'code']
    tags = [('exercise' in c['tags']) - ('check' in c['tags']) for c in cells]
    n = tags.count(1)
    assert 2 <= n <= 4, f"{stem}: {n} exercises; a stage has 2 to 4"
    assert len(jc.solution_cells(stem)) == n, f"{stem}: solutions/{stem}.py needs one cell per exercise, in order"
    pairs = [t for t in tags if t]
    assert pairs == [1, -1]*n, f"{stem}: each exercise cell is followed by its check cell"

@pytest.mark.parametrize('stem', STEMS)
def test_solutions_pass(stem):
    srcs, n = section(stem, with_solutions=True)
    out = run_cells(srcs)
    assert out.count('✅') == n and '❌' not in out and '⏳' not in out, out

@pytest.mark.parametrize('stem', STEMS)
def test_stubs_are_not_passed(stem):
    srcs, n = section(stem, with_solutions=False)
    out = run_cells(srcs)  # a check must report, never raise
    assert '✅' not in out and out.count('⏳') + out.count('❌') == n, out

def answered(stem, **answers) -> str:
    "What `stem`'s section prints when the exercises defining the names in `answers` hold those sources (the others, the solutions)."
    cells, sols = jc.exercise_cells(stem), iter(jc.solution_cells(stem))
    srcs = [c['source'] for c in jc._read_percent(jc.EXERCISES/'_check.py')]
    for c in cells:
        if c['cell_type'] != 'code': continue
        if 'exercise' not in c['tags']: srcs.append(c['source']); continue
        sol = next(sols)
        mine = [v for k, v in answers.items() if re.search(rf'^(?:def|class) {k}\b|^{k} =', sol, re.M)]
        srcs.append(mine[0] if mine else sol)
    return run_cells(srcs)

def report(out, name) -> str:
    "The lines `check(name)` printed."
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if re.match(rf'\S+ {name}\b', l))
    return '\n'.join([lines[i]] + [l for l in lines[i + 1:i + 4] if l.startswith('   ')])

def test_a_list_from_indices_names_the_line_and_the_fix():
    out = report(answered('02_dataloader', ReverseSampler='''class ReverseSampler(Sampler):
    def indices(self): return list(range(self.n - 1, -1, -1))'''), 'ReverseSampler')
    assert out.startswith("❌ ReverseSampler raised AttributeError: 'list' object"), out
    assert re.search(r"\n   at <cell \d+>, line \d+: \S", out), f"the line of the notebook that raised, with its source: {out}"
    assert 'hint: indices() returns a 1-D tensor' in out, out

def test_a_missing_annealer_gets_its_hint():
    out = report(answered('06_schedule', sched_step='''def sched_step(start, end, pos):
    return start if pos < 0.5 else end'''), 'sched_step')
    assert "missing 1 required positional argument: 'pos'" in out and re.search(r'at <cell \d+>, line \d+: f = sched_step\(1., 0.1\)', out), out
    assert 'hint: keep `@annealer`' in out, out

def test_an_error_in_the_students_function_names_that_function_and_line():
    out = report(answered('03_optimizer', sign_step='''def sign_step(p, lr, **kwargs):
    step = lr * torch.sign(p.grad)
    p.sub_(step * undefined_name)'''), 'sign_step')
    assert "raised NameError: name 'undefined_name' is not defined" in out, out
    assert re.search(r"at <cell \d+>, line 3, in sign_step: p.sub_\(step \* undefined_name\)", out), out

def test_a_wrong_sign_step_is_not_blamed_on_signsgdw():
    out = answered('03_optimizer', sign_step='''def sign_step(p, lr, **kwargs):
    p.add_(torch.sign(p.grad), alpha=lr)  # the wrong sign''')
    assert report(out, 'sign_step').startswith('❌ sign_step does not work yet'), out
    assert report(out, 'SignSGDW') == '✅ SignSGDW works!', f"SignSGDW's check uses a working sign_step: {out}"

def test_a_typo_in_after_loss_is_not_called_skipping_validation():
    out = report(answered('04_learner', LossesCB='''class LossesCB(Callback):
    def before_fit(self, learn): self.losses = []
    def after_los(self, learn): self.losses.append(learn.loss.item())'''), 'LossesCB')
    assert 'no loss was recorded: is your method named after_loss' in out and 'validation' not in out, out
    out = report(answered('04_learner', LossesCB='''class LossesCB(Callback):
    def before_fit(self, learn): self.losses = []
    def after_batch(self, learn): self.losses.append(learn.loss.item())'''), 'LossesCB')
    assert 'got 40 (skip validation batches' in out, out

def test_a_wrong_countcb_is_not_blamed_on_stopaftercb():
    out = answered('04_learner', CountCB='''class CountCB(Callback):
    def before_fit(self, learn): self.n_train = self.n_valid = 0
    def after_batch(self, learn): self.n_valid += 1''')
    assert report(out, 'CountCB').startswith('❌') and report(out, 'StopAfterCB') == '✅ StopAfterCB works!', out

def test_a_check_puts_back_the_names_it_swapped():
    src = ''.join(c['source'] + '\n' for c in jc._read_percent(jc.EXERCISES/'_check.py'))
    ns = {}; exec(compile(src, '<c>', 'exec'), ns)
    swap = compile("with check('x', using={'f': 2}): assert f == 2", '<d>', 'exec')
    with contextlib.redirect_stdout(io.StringIO()) as out:
        ns['f'] = 1; exec(swap, ns); assert ns['f'] == 1
        del ns['f']; exec(swap, ns); assert 'f' not in ns
    assert out.getvalue() == '✅ x works!\n' * 2
