"""The course in a real JupyterLab, started as `make lab` starts it (the venv's kernel, save hook and config, the
repository's root, the course map first): the server alone says no warning at start, offers one kernel and opens every
"solutions" link; then headless Chromium opens the course map and 04_learner (neither is marked modified by opening),
finds one kernel in the Launcher, runs all of 04_learner and checks that no cell shows an error and a progress widget
was rendered.

Needs JupyterLab and selenium in the venv (`make test` installs them) and, for the browser part, Debian's `chromium`
and `chromium-driver` (`.ci/run` and `make browser-test` install them as root); without them the tests say they were
skipped (`pytest -rs`). The course's files are copied to a temporary folder first, so the Lab's autosave cannot touch
the repository.
"""
import json, re, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')
RUN_ALL_LIMIT = 600  # seconds for 04_learner's Run All in the browser
COPIED = ('nbs', 'solutions', 'exercises', 'README.md')  # what the Lab shows of the repository

def _missing(*mods) -> str | None:
    for mod in mods:
        try: __import__(mod)
        except ImportError: return f"no {mod} in the venv: make test installs it"

pytestmark = pytest.mark.skipif(_missing('jupyterlab') is not None, reason=_missing('jupyterlab') or '')
no_browser = _missing('selenium') or (None if CHROMIUM and DRIVER else
                                      "no Chromium here: .ci/run and make browser-test install Debian's chromium and chromium-driver")

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def lab_open_args(root: Path) -> list[str]:
    "The options `make lab` gives JupyterLab (the Makefile's LAB_OPEN), serving `root` instead of the repository."
    line = next(l for l in (ROOT/'Makefile').read_text().splitlines() if l.startswith('LAB_OPEN :='))
    args = line.split(':=', 1)[1].split()
    assert '--ServerApp.root_dir=.' in args
    return [f'--ServerApp.root_dir={root}' if a == '--ServerApp.root_dir=.' else a for a in args]

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 over a copy of the course, started as `make lab` starts it; yields its URL, token, root, and log at start."
    tmp = tmp_path_factory.mktemp('lab')
    root = tmp/'repo'
    for name in COPIED: (shutil.copytree if (ROOT/name).is_dir() else shutil.copy)(ROOT/name, root/name)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp/'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--allow-root', f'--port={port}',
                             '--ServerApp.ip=127.0.0.1', *lab_open_args(root), f'--IdentityProvider.token={token}',
                             '--LabApp.expose_app_in_browser=True'], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try: urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=1); break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f"JupyterLab did not start: {(tmp/'lab.log').read_text()[-2000:]}")
        time.sleep(1)  # the lines logged as it finishes starting
        yield url, token, root, (tmp/'lab.log').read_text()
    finally:
        proc.terminate(); proc.wait(30); log.close()

def _get(url, token, api) -> dict:
    with urllib.request.urlopen(f'{url}{api}?token={token}', timeout=30) as r: return json.load(r)

def test_the_lab_starts_without_a_warning_and_offers_one_kernel(lab):
    url, token, root, log = lab
    warned = [l for l in log.splitlines() if re.search(r'Warning|^\[W |Overriding', l)]
    assert warned == [], f"JupyterLab warned at start: {warned}"
    specs = _get(url, token, '/api/kernelspecs')
    assert (specs['default'], list(specs['kernelspecs'])) == ('minitrain', ['minitrain'])

def test_every_solutions_link_opens_its_file_in_the_lab(lab):
    url, token, root, _ = lab
    links = [(nb, m) for nb in sorted((root/'nbs').glob('*.ipynb'))
             for m in re.findall(r'\]\((\.\./solutions/[^)\s]+)\)', nb.read_text(encoding='utf-8'))]
    assert len(links) >= 10
    for nb, link in links:
        api = (nb.parent/link).resolve().relative_to(root).as_posix()
        got = _get(url, token, f'/api/contents/{api}')
        assert got['type'] in ('file', 'notebook') and got['content'], f"{nb.name}: {link} does not open in the Lab"  # jupytext's: a notebook

@pytest.fixture(scope='module')
def driver(lab, tmp_path_factory):
    if no_browser: pytest.skip(no_browser)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1000',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium")}'): opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield d
    d.quit()

def _wait(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if v := cond(): return v
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")

def _panel(path: str) -> str:
    "JavaScript that finds the notebook panel of `path` (relative to the Lab's root) as `w`."
    return f"const w = window.jupyterapp && [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === {path!r});"

def _open_and_settle(driver, path: str) -> str:
    "Wait until the notebook at `path` is open with its kernel started and idle; the kernel's name."
    js = driver.execute_script
    state = lambda: js(_panel(path) + "const k = w && w.sessionContext.session && w.sessionContext.session.kernel;"
                       "return w && w.context.isReady && k && k.status === 'idle' ? k.name : null")
    name = _wait(state, 120, f"{path} and its kernel")
    time.sleep(2)  # JupyterLab writes the kernel's language_info into the notebook just after the kernel is ready
    return name

def test_opening_the_course_map_and_a_notebook_modifies_neither(lab, driver):
    url, token, root, _ = lab
    js = driver.execute_script
    driver.get(f'{url}/?token={token}')  # make lab's default URL opens the course map
    for path in ('nbs/index.ipynb', 'nbs/04_learner.ipynb'):
        if path != 'nbs/index.ipynb': js(f"jupyterapp.commands.execute('docmanager:open', {{path: {path!r}}})")
        assert _open_and_settle(driver, path) == 'minitrain', f"{path} opened with another kernel than the course's"
        assert js(_panel(path) + "return w.context.model.dirty") is False, f"opening {path} marked it modified"
    js("jupyterapp.commands.execute('launcher:create')")
    cards = _wait(lambda: js("return [...document.querySelectorAll('.jp-Launcher-section')].filter(s => "
                             "/Notebook/.test(s.querySelector('.jp-Launcher-sectionTitle').textContent))"
                             ".map(s => [...s.querySelectorAll('.jp-LauncherCard')].map(c => c.textContent.trim()))[0]"),
                  30, "the Launcher")
    assert cards == ['minitrain'], f"the Launcher offers the notebook kernels {cards}"

def test_run_all_04_learner_in_chromium(lab, driver):
    url, token, root, _ = lab
    js, path = driver.execute_script, 'nbs/04_learner.ipynb'
    driver.get(f'{url}/lab/tree/{path}?reset&token={token}')  # a fresh workspace: 04_learner alone, the current notebook
    _open_and_settle(driver, path)
    t0 = time.time()
    js("jupyterapp.commands.execute('notebook:run-all-cells')")
    seen_widget = False
    def done():
        nonlocal seen_widget
        seen_widget = seen_widget or js("return document.querySelectorAll('.widget-progress, .jupyter-widgets .progress-bar').length > 0")
        # the kernel is idle and the last code cell has run (Run All stops at an error: then that is reported)
        return js(_panel(path) + """const cs = w.content.widgets.filter(c => c.model.type === 'code');
                     const k = w.sessionContext.session.kernel;
                     const failed = cs.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
                     return k.status === 'idle' && (failed || cs[cs.length - 1].model.executionCount !== null);""")
    _wait(done, RUN_ALL_LIMIT, "Run All to finish")
    print(f"Run All of {path} in Chromium: {time.time() - t0:.0f} s")
    errors = js(_panel(path) + "return w.content.widgets.filter(c => c.model.type === 'code').flatMap(c => c.model.outputs.toJSON())"
                ".filter(o => o.output_type === 'error' || (o.name === 'stderr' && /Error|Traceback/.test([].concat(o.text).join(''))))"
                ".map(o => o.ename ? o.ename + ': ' + o.evalue : [].concat(o.text).join(''))")
    assert errors == [], f"cells showed errors: {errors[:3]}"
    assert seen_widget, "no progress widget was rendered while training"
