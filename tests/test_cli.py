import os, subprocess, sys
from minitrain.datasets import EMBEDDED_DIR

def run_cli(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'minitrain', *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)

def test_train_prints_accuracy_on_the_subset():
    r = run_cli('train', '--epochs', '1', env={'MINITRAIN_FASHION_MNIST': str(EMBEDDED_DIR)})
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split('accuracy ')[-1].split()[0])
    assert 0.6 < acc <= 1.0, r.stdout

def test_bad_option_fails_fast():
    r = run_cli('train', '--epochs', '0')
    assert r.returncode == 2 and 'positive integer' in r.stderr
