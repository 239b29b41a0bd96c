"""A real browser on the course: headless Chromium drives JupyterLab as `make lab` starts it (the venv's
kernel and save hook), opens 04_learner, runs all cells, and checks that no cell shows an error and that a
progress widget was rendered.

Needs Debian's `chromium` and `chromium-driver`, and JupyterLab and selenium in the venv: `make browser-test`
installs them and runs this. It runs only with `MINITRAIN_BROWSER=1` (which `make browser-test` sets); `make test` and CI skip it.
The notebooks are copied to a temporary folder first, so JupyterLab's autosave cannot touch `nbs/`.
"""
import os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')
RUN_ALL_LIMIT = 600  # seconds for 04_learner's Run All in the browser

def _missing() -> str | None:
    if os.environ.get('MINITRAIN_BROWSER') != '1': return "the browser test runs with make browser-test (MINITRAIN_BROWSER=1)"
    if not (CHROMIUM and DRIVER): return "no Chromium here: make browser-test installs Debian's chromium and chromium-driver"
    for mod in ('selenium', 'jupyterlab'):
        try: __import__(mod)
        except ImportError: return f"no {mod} in the venv: make browser-test installs it"

pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or '')

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 over a copy of nbs/, started as `make lab` starts it; yields its URL and token."
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs')
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path/'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--allow-root', f'--port={port}',
                             '--ServerApp.ip=127.0.0.1', f'--ServerApp.root_dir={tmp_path/"nbs"}',
                             f'--IdentityProvider.token={token}', '--LabApp.expose_app_in_browser=True'],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try: urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=1); break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f"JupyterLab did not start: {(tmp_path/'lab.log').read_text()[-2000:]}")
        yield url, token
    finally:
        proc.terminate(); proc.wait(30); log.close()

def _wait(driver, cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if v := cond(): return v
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")

def test_run_all_04_learner_in_chromium(lab, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    url, token = lab
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1000',
              f'--user-data-dir={tmp_path/"chromium"}'): opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    js = driver.execute_script
    try:
        driver.get(f'{url}/lab/tree/04_learner.ipynb?token={token}')
        _wait(driver, lambda: js("return !!(window.jupyterapp && jupyterapp.shell.currentWidget && "
                                 "jupyterapp.shell.currentWidget.sessionContext && "
                                 "jupyterapp.shell.currentWidget.sessionContext.session && "
                                 "jupyterapp.shell.currentWidget.sessionContext.session.kernel)"), 120, "the notebook and its kernel")
        kernel = js("return jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
        assert kernel == 'minitrain', f"the notebook opened with kernel {kernel!r}, not the project's"
        js("jupyterapp.commands.execute('notebook:run-all-cells')")
        seen_widget = False
        def done():
            nonlocal seen_widget
            seen_widget = seen_widget or js("return document.querySelectorAll('.widget-progress, .jupyter-widgets .progress-bar').length > 0")
            # every code cell has run: none is queued or running ("[*]") and the last one has a number
            return js("""const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
                         return ps.length > 0 && !ps.some(t => t.includes('*')) && /\\d/.test(ps[ps.length - 1]);""")
        _wait(driver, done, RUN_ALL_LIMIT, "Run All to finish")
        errors = js("return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
                    ".map(e => e.textContent).filter(t => /Error|Traceback/.test(t))")
        assert errors == [], f"cells showed errors: {errors[:3]}"
        assert seen_widget, "no progress widget was rendered while training"
    finally:
        driver.quit()
