"Reliability III (issue 28): files written by `atomic_write` get the mode a plain `open(path, 'w')` gives."
import os
import pytest
from minitrain.core import atomic_write

pytestmark = pytest.mark.skipif(not hasattr(os, 'fchmod'), reason='POSIX file modes')

@pytest.mark.parametrize('mask', [0o022, 0o077, 0o002])
def test_atomic_write_respects_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        plain = tmp_path/'plain.txt'
        with open(plain, 'w') as f: f.write('x')
        new = atomic_write(tmp_path/'new.txt', lambda f: f.write('x'), text=True)
    finally: os.umask(old)
    assert new.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~mask

def test_atomic_write_keeps_an_overwritten_files_mode(tmp_path):
    p = tmp_path/'f.bin'
    p.write_bytes(b'old')
    p.chmod(0o640)
    atomic_write(p, lambda f: f.write(b'new'))
    assert p.read_bytes() == b'new' and p.stat().st_mode & 0o777 == 0o640
