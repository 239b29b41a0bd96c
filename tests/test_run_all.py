""""Run All" in Jupyter, tested: every notebook in a real kernel (the project's `minitrain` kernel, through
nbclient), every cell, `#| eval: false` and `#| slow` ones included. Each must finish within
`RUN_ALL_LIMIT` seconds on 2 cores with no error output, show no developer paths, and write nothing in the
repository outside ignored folders.

It runs in CI (`CI` set) and when `MINITRAIN_RUN_ALL=1`; elsewhere it is skipped, to keep `make test` short.
One notebook: `.venv/bin/python scripts/jupyter_course.py run-all nbs/04_learner.ipynb`.
"""
import os, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'scripts'))
import jupyter_course as jc

pytestmark = pytest.mark.skipif(not (os.environ.get('CI') or os.environ.get('MINITRAIN_RUN_ALL') == '1'),
                                reason="Run All of every notebook runs in CI or with MINITRAIN_RUN_ALL=1")

@pytest.mark.parametrize('path', jc.stage_notebooks(), ids=lambda p: p.stem)
def test_run_all(path):
    res = jc.run_all(path)
    assert jc.violations(res) == [], f"{path.name} under Run All"
