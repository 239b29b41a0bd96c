"""Reliability III (issue 28, items 5 and 8): a full disk is named as such; only provably dead temporary files are
removed; archive links are resolved against the destination itself; the verification record vouches only for what
it hashed; DataLoader workers die with their parent, even mid-item."""
import errno, json, os, signal, subprocess, sys, tarfile, textwrap
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
import minitrain.datasets as mds
from minitrain.core import atomic_write, clean_stale_temps, set_seed
from minitrain.data import Dataset, DataLoader, DataLoaders
from minitrain.learner import Learner, TrainCB
from minitrain.tracking import SaveModelCB
from minitrain import cli

POSIX = pytest.mark.skipif(os.name != 'posix', reason='POSIX file locks and signals')

def tiny_learner(cbs=()):
    set_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    dls = DataLoaders(DataLoader(Dataset(x, y), bs=8), DataLoader(Dataset(x[:8], y[:8]), bs=8))
    return Learner(nn.Linear(4, 3), dls, F.cross_entropy, lr=0.1, cbs=[TrainCB(), *cbs])

# ---------------------------------------------------------------- item 5: a full disk

class FullDisk:
    "An open file on a disk that refuses every byte past the first `free`, as a full disk does (ENOSPC)."
    def __init__(self, f, free=64): self.f, self.free = f, free
    def write(self, b):
        if self.f.tell() + len(b) > self.free: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(b)
    def __getattr__(self, name): return getattr(self.f, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()

@pytest.fixture
def full_disk(monkeypatch):
    "Every file opened on a descriptor (what `atomic_write` writes to) sits on a full disk."
    real = os.fdopen
    monkeypatch.setattr(os, 'fdopen', lambda *a, **kw: FullDisk(real(*a, **kw)))

def check_named(e, path: Path):
    msg = str(e)
    assert e.errno == errno.ENOSPC and 'no space left on device' in msg and str(path) in msg, msg
    assert 'inline_container' not in msg and 'free space on the disk' in msg

def test_learn_save_on_a_full_disk_says_so(tmp_path, full_disk):
    learn, path = tiny_learner(), tmp_path/'ckpt.pth'
    with pytest.raises(OSError) as e: learn.save(path)
    check_named(e.value, path)
    assert isinstance(e.value.__cause__, OSError) and not list(tmp_path.iterdir())  # the cause kept; no temporary left

def test_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path/'ckpt.pth'
    tiny_learner().save(path)
    before = path.read_bytes()
    real = os.fdopen
    monkeypatch.setattr(os, 'fdopen', lambda *a, **kw: FullDisk(real(*a, **kw)))
    with pytest.raises(OSError) as e: tiny_learner().save(path)
    check_named(e.value, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['ckpt.pth']

def test_a_writer_that_hides_the_error_still_names_the_full_disk(tmp_path):
    "The writer wraps the file itself (the error reaches atomic_write only as the cause of torch's own)."
    path = tmp_path/'t.pth'
    with pytest.raises(OSError) as e: atomic_write(path, lambda f: torch.save(torch.zeros(1000), FullDisk(f)))
    check_named(e.value, path)

def test_save_model_cb_on_a_full_disk_says_so(tmp_path, full_disk):
    path = tmp_path/'best.pth'
    learn = tiny_learner([SaveModelCB(path=path, every_epoch=True)])
    with pytest.raises(OSError) as e: learn.fit(1)
    check_named(e.value, path)
    assert learn.fit_status == 'failed'

def test_other_write_errors_are_unchanged(tmp_path):
    def refuse(f): raise PermissionError(errno.EACCES, 'denied')
    with pytest.raises(PermissionError, match='denied'): atomic_write(tmp_path/'f', refuse)

def fashion_folder(folder: Path, n=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for xf, yf in (('x_train', 'y_train'), ('x_valid', 'y_valid')):
        mds.write_idx(rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), folder/mds.FASHION_FILES[xf])
        mds.write_idx(rng.integers(0, 10, n).astype(np.uint8), folder/mds.FASHION_FILES[yf])
    return folder

def test_cli_on_a_full_disk_says_so(tmp_path, capsys, monkeypatch):
    data, out = fashion_folder(tmp_path/'d'), tmp_path/'run'
    real = os.fdopen
    monkeypatch.setattr(os, 'fdopen', lambda *a, **kw: FullDisk(real(*a, **kw)))
    with pytest.raises(SystemExit) as e:
        cli.main(['train', '--data', str(data), '--epochs', '1', '--quiet', '--device', 'cpu', '--model', 'mlp',
                  '--out', str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 1 and 'no space left on device' in err and str(out/'model.pth') in err, err
    assert 'inline_container' not in err and 'Traceback' not in err

# ---------------------------------------------------------------- item 5: stale temporary files

def locked_by_child(path: Path):
    "A live process (another writer, say in another container) that holds the lock on `path` until it is killed."
    code = textwrap.dedent(f"""
        import fcntl, sys
        f = open({str(path)!r}, 'rb'); fcntl.flock(f, fcntl.LOCK_EX)
        print('locked', flush=True); sys.stdin.read()""")
    p = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'locked'
    return p

@POSIX
def test_a_live_writer_whose_pid_looks_dead_keeps_its_temporary(tmp_path):
    dead = subprocess.Popen(['true']); dead.wait()
    tmp = tmp_path/f'.ckpt.pth.{dead.pid}.abc123.tmp'  # its pid means nothing here (another PID namespace)
    tmp.write_bytes(b'being written')
    writer = locked_by_child(tmp)
    try:
        assert clean_stale_temps(tmp_path/'ckpt.pth') == []
        tiny_learner().save(tmp_path/'ckpt.pth')
        assert tmp.read_bytes() == b'being written'
    finally: writer.kill(); writer.wait()
    with pytest.warns(UserWarning, match='temporary file of a write killed'): removed = clean_stale_temps(tmp_path/'ckpt.pth')
    assert removed == [tmp] and not tmp.exists()  # its writer gone (the lock free): removed

@POSIX
def test_a_dead_writer_whose_pid_looks_alive_is_cleaned(tmp_path):
    "A pid that runs here (ours, reused by another process) proves nothing: the free lock does."
    tmp = tmp_path/f'.ckpt.pth.{os.getpid()}.abc123.tmp'
    tmp.write_bytes(b'left by a killed writer')
    with pytest.warns(UserWarning, match='temporary file of a write killed'): tiny_learner().save(tmp_path/'ckpt.pth')
    assert os.listdir(tmp_path) == ['ckpt.pth']

@POSIX
def test_a_writer_holds_its_lock_until_the_rename(tmp_path):
    "While `write` runs, a cleaner (in this process or another) leaves the temporary file alone."
    seen = []
    def write(f):
        tmp = next(p for p in tmp_path.iterdir() if p.name.endswith('.tmp'))
        seen.append(clean_stale_temps(tmp_path/'f.bin'))
        f.write(b'done')
    atomic_write(tmp_path/'f.bin', write)
    assert seen == [[]] and os.listdir(tmp_path) == ['f.bin'] and (tmp_path/'f.bin').read_bytes() == b'done'

# ---------------------------------------------------------------- item 8: the verification record

@pytest.fixture
def cached(tmp_path, monkeypatch):
    "A Fashion-MNIST cache (a small stand-in, its sums the known ones) verified once, with its record written."
    folder = fashion_folder(tmp_path/'cache'/'minitrain'/'fashion-mnist')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.delenv(mds.FASHION_ENV, raising=False)
    monkeypatch.setattr(mds, 'FASHION_SHA256', {f: mds._sha256_of_content(folder/f) for f in mds.FASHION_FILES.values()})
    assert mds.load_fashion_mnist(source='cache').source.startswith('cache')
    assert (folder/'verified.json').is_file()
    return folder

def forge_entry(rec, fname: str, swap: dict):
    "`rec` with the numbers in the entry for `fname` (wherever the record keeps it) replaced as `swap` says."
    if isinstance(rec, dict):
        return {k: ([swap.get(v, v) for v in val] if k == fname and isinstance(val, list) else forge_entry(val, fname, swap))
                for k, val in rec.items()}
    return rec

def test_an_edited_file_with_its_edited_record_entry_is_not_verified(cached):
    labels = cached/mds.FASHION_FILES['y_train']
    old = labels.stat()
    y = mds.read_idx(labels).copy()
    y[:] = 3  # every training label changed, the size kept
    mds.write_idx(y, labels)
    new = labels.stat()
    rec_path = cached/'verified.json'
    swap = {old.st_size: new.st_size, old.st_mtime_ns: new.st_mtime_ns, old.st_ctime_ns: new.st_ctime_ns, old.st_ino: new.st_ino}
    rec_path.write_text(json.dumps(forge_entry(json.loads(rec_path.read_text()), labels.name, swap)))
    with pytest.raises(mds.ChecksumError, match='changed or is damaged'): mds.load_fashion_mnist(source='cache')

def test_a_record_copied_in_with_the_data_vouches_for_nothing(cached, tmp_path, monkeypatch):
    "A folder with its files and record copied elsewhere (or a record made on another machine) is hashed again."
    import shutil
    other = tmp_path/'elsewhere'
    shutil.copytree(cached, other)
    calls = []
    real = mds._sha256_of_content
    monkeypatch.setattr(mds, '_sha256_of_content', lambda p: calls.append(p) or real(p))
    mds.verify_files(other)
    assert len(calls) == 4
    mds.verify_files(other)
    assert len(calls) == 4  # our own record, signed here, is trusted

@POSIX
def test_the_record_key_is_the_users_alone(cached):
    key = Path(os.environ['XDG_CACHE_HOME'])/'minitrain'/'verify.key'
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32

# ---------------------------------------------------------------- item 8: archive links

def sym(name, target):
    m = tarfile.TarInfo(name); m.type, m.linkname = tarfile.SYMTYPE, target
    return m, None

def folder_member(name):
    m = tarfile.TarInfo(name); m.type, m.mode = tarfile.DIRTYPE, 0o755
    return m, None

def file_member(name, data=b'x'):
    m = tarfile.TarInfo(name); m.size = len(data)
    return m, data

def archive(path: Path, members) -> Path:
    import io
    with tarfile.open(path, 'w:gz') as tf:
        for m, data in members: tf.addfile(m, io.BytesIO(data) if data is not None else None)
    return path

CHAINS = {
    'chain at the top': [sym('a', '.'), sym('b', 'a/..'), sym('c', 'b/..')],
    'chain in a folder': [folder_member('tiny'), sym('tiny/a', '.'), sym('tiny/b', 'a/..'), sym('tiny/c', 'b/..')],
    'deeper than its text': [folder_member('x'), folder_member('x/y'), folder_member('z'), sym('x/y/a', '../../z'),
                             sym('x/y/b', 'a/../..')],  # reads as x/y/a/../.. = x; leads to z/../.. = outside
    'single top link to .': [sym('data', '.')],
}

@pytest.mark.parametrize('members', CHAINS.values(), ids=CHAINS.keys())
def test_link_chains_are_refused_by_our_own_check(tmp_path, members):
    from minitrain.vision import check_members, UnsafeArchiveError
    with tarfile.open(archive(tmp_path/'evil.tgz', members)) as tf:
        with pytest.raises(UnsafeArchiveError, match='refused'): check_members(tf, 'evil.tgz')

@pytest.mark.parametrize('members', [*CHAINS.values(),
                                     [folder_member('tiny'), file_member('tiny/a.txt'), sym('tiny/l', '../other/x')]],
                         ids=[*CHAINS.keys(), 'out of the single top folder'])
def test_untar_without_tarfiles_filter_extracts_nothing_that_leads_out(tmp_path, monkeypatch, members):
    "As on a Python whose tarfile has no filter='data': our checks alone keep every link inside the data folder."
    from minitrain.vision import untar_data, file_checksum, UnsafeArchiveError
    monkeypatch.delattr(tarfile, 'data_filter', raising=False)
    cache = tmp_path/'cache'
    monkeypatch.setenv('MINITRAIN_DATA', str(cache))
    arc = archive(tmp_path/'evil.tgz', members)
    with pytest.raises(UnsafeArchiveError, match='refused'): untar_data(arc.as_uri(), checksum=file_checksum(arc), progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ['archives']  # no data folder, no temporary one

# ---------------------------------------------------------------- item 8: workers die with their parent

SLOW_PARENT = """
import os, sys, threading
from minitrain.data import DataLoader

class Slow:
    "A dataset whose first item never ends (a hung network file system, say)."
    def __len__(self): return 4
    def __getitem__(self, i):
        print(os.getpid(), flush=True)  # the worker, in the middle of an item
        threading.Event().wait()
        return i

def run():
    for b in DataLoader(Slow(), bs=1, num_workers=1): pass

if sys.argv[1] == 'thread':  # the pool started from another thread: no parent-death signal, the worker checks
    t = threading.Thread(target=run); t.start(); t.join()
else: run()
"""

def wait_gone(pid: int, limit_s: float = 30) -> bool:
    "Whether process `pid` ends within `limit_s` seconds (a guard against a hang: woken when it ends, not polled)."
    import select
    try: fd = os.pidfd_open(pid)
    except ProcessLookupError: return True
    try: return bool(select.select([fd], [], [], limit_s)[0])
    finally: os.close(fd)

@pytest.mark.skipif(not sys.platform.startswith('linux') or not hasattr(os, 'pidfd_open'), reason='Linux pidfd')
@pytest.mark.parametrize('how', ['main', 'thread'])
def test_a_worker_mid_item_dies_with_its_killed_parent(how):
    import minitrain
    env = {**os.environ, 'PYTHONPATH': str(Path(minitrain.__file__).parents[1]), 'OMP_NUM_THREADS': '1'}
    parent = subprocess.Popen([sys.executable, '-c', SLOW_PARENT, how], stdout=subprocess.PIPE, text=True, env=env)
    worker = None
    try:
        worker = int(parent.stdout.readline())  # the worker is inside __getitem__
        assert worker != parent.pid
        parent.kill(); parent.wait()  # SIGKILL: the main process cleans up nothing
        assert wait_gone(worker), f"the worker (pid {worker}) outlived its killed parent"
        worker = None
    finally:
        if parent.poll() is None: parent.kill(); parent.wait()
        if worker is not None:
            try: os.kill(worker, signal.SIGKILL)
            except ProcessLookupError: pass
        parent.stdout.close()
