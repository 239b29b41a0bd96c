"The \"Try it\" exercises: each check cell passes with the solution and says \"not yet\" with the stub."
import contextlib, io, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'scripts'))
import jupyter_course as jc

STEMS = sorted(p.stem for p in jc.EXERCISES.glob('[0-9]*.py'))

def run_cells(srcs) -> str:
    "Run the cell sources `srcs` in one fresh namespace, as a notebook does; return what they printed."
    ns, out = {'__name__': '__main__'}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for s in srcs: exec(compile(s, '<cell>', 'exec'), ns)
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
