import gzip, hashlib
from pathlib import Path
import numpy as np
import pytest
import torch
import minitrain.datasets as mds
from minitrain.datasets import (IDXError, ChecksumError, read_idx, parse_idx, write_idx, idx_bytes,
    load_fashion_mnist, download_fashion_mnist, FASHION_FILES, EMBEDDED_DIR, FASHION_CLASSES)

@pytest.mark.parametrize('dtype', ['u1', 'i1', 'i2', 'i4', 'f4', 'f8'])
@pytest.mark.parametrize('name', ['a.idx', 'a.idx.gz'])
def test_idx_round_trip(tmp_path, dtype, name):
    a = (np.arange(60) - 20).astype(dtype).reshape(3, 4, 5)
    write_idx(a, tmp_path/name)
    b = read_idx(tmp_path/name)
    assert b.dtype == a.dtype and b.shape == a.shape and (a == b).all()

def test_gzip_detected_by_content_not_name(tmp_path):
    (tmp_path/'x.bin').write_bytes(gzip.compress(idx_bytes(np.arange(5, dtype='u1'))))
    assert read_idx(tmp_path/'x.bin').tolist() == [0, 1, 2, 3, 4]

def test_idx_is_big_endian():
    data = idx_bytes(np.array([1], dtype='i4'))
    assert data == b'\x00\x00\x0c\x01' + b'\x00\x00\x00\x01' + b'\x00\x00\x00\x01'

def good(n=6): return idx_bytes(np.arange(n, dtype='u1').reshape(2, n//2))

@pytest.mark.parametrize('data,msg', [
    (b'\x01\x00' + good()[2:], 'bad magic'),
    (good()[:2] + b'\x07' + good()[3:], 'unknown data type code 0x07'),
    (good()[:-1], 'truncated'),
    (good() + b'\x00', 'trailing bytes'),
    (good()[:6], 'truncated header'),
    (b'\x00\x00', 'too short'),
])
def test_bad_idx_names_file_and_problem(tmp_path, data, msg):
    p = tmp_path/'bad.idx'
    p.write_bytes(data)
    with pytest.raises(IDXError, match=msg) as e: read_idx(p)
    assert str(p) in str(e.value)

def test_corrupt_gzip(tmp_path):
    p = tmp_path/'bad.gz'
    p.write_bytes(gzip.compress(good())[:-8])
    with pytest.raises(IDXError, match='gzip') as e: read_idx(p)
    assert str(p) in str(e.value)

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.idx'): read_idx(tmp_path/'nope.idx')

def test_unwritable_dtype():
    with pytest.raises(IDXError, match='complex'): idx_bytes(np.zeros(2, dtype=np.complex64))

def test_embedded_subset_is_balanced_real_data():
    fm = load_fashion_mnist(source='embedded')
    assert fm.x_train.shape == (5000, 28, 28) and fm.x_valid.shape == (1000, 28, 28)
    assert fm.x_train.dtype == torch.uint8 and fm.y_train.dtype == torch.int64
    assert fm.y_train.bincount().tolist() == [500]*10 and fm.y_valid.bincount().tolist() == [100]*10
    assert fm.classes == FASHION_CLASSES and fm.source.startswith('embedded')
    assert fm.x_train.float().mean() > 50  # real images, not blanks
    assert sum(f.stat().st_size for f in EMBEDDED_DIR.iterdir()) < 4e6

REAL_SHA256 = dict(mds.FASHION_SHA256)

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    "No env var, an empty cache and no Debian copy: only what a test sets up is found."
    monkeypatch.delenv(mds.FASHION_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.setattr(mds, 'DEBIAN_DIR', tmp_path/'no-debian')
    # the cache is verified against the checksums of the full data; these tests cache the subset
    monkeypatch.setattr(mds, 'FASHION_SHA256', {f: hashlib.sha256(gzip.decompress((EMBEDDED_DIR/f).read_bytes())).hexdigest()
                                                for f in FASHION_FILES.values()})
    return tmp_path

def copy_subset(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in FASHION_FILES.values(): (dest/f).write_bytes((EMBEDDED_DIR/f).read_bytes())
    return dest

def test_falls_back_to_embedded(isolated):
    assert load_fashion_mnist().source.startswith('embedded')

@pytest.mark.parametrize('where', ['path', 'env', 'cache', 'debian'])
def test_each_source_is_found(isolated, monkeypatch, where):
    folder = {'path': isolated/'mine', 'env': isolated/'env', 'cache': isolated/'cache'/'minitrain'/'fashion-mnist',
              'debian': isolated/'no-debian'}[where]
    copy_subset(folder)
    if where == 'env': monkeypatch.setenv(mds.FASHION_ENV, str(folder))
    fm = load_fashion_mnist(path=folder if where == 'path' else None)
    assert fm.source == f'{where}: {folder}' and len(fm.x_train) == 5000

def test_order_path_before_env_before_cache(isolated, monkeypatch):
    mine, env = copy_subset(isolated/'mine'), copy_subset(isolated/'env')
    copy_subset(isolated/'cache'/'minitrain'/'fashion-mnist')
    monkeypatch.setenv(mds.FASHION_ENV, str(env))
    assert load_fashion_mnist(path=mine).source.startswith('path')
    assert load_fashion_mnist().source.startswith('env')
    assert load_fashion_mnist(source='cache').source.startswith('cache')

def test_missing_named_folders_are_errors(isolated, monkeypatch):
    with pytest.raises(FileNotFoundError, match='does not exist'): load_fashion_mnist(path=isolated/'nowhere')
    monkeypatch.setenv(mds.FASHION_ENV, str(isolated/'also-nowhere'))
    with pytest.raises(FileNotFoundError, match='MINITRAIN_FASHION_MNIST'): load_fashion_mnist()
    (isolated/'partial').mkdir()
    with pytest.raises(FileNotFoundError, match='lacks train-images'): load_fashion_mnist(path=isolated/'partial')

def test_bad_source_names(isolated):
    with pytest.raises(ValueError, match="choose one of"): load_fashion_mnist(source='web')
    with pytest.raises(ValueError, match="needs path="): load_fashion_mnist(source='path')
    with pytest.raises(FileNotFoundError, match='download=True'): load_fashion_mnist(source='cache')
    with pytest.raises(FileNotFoundError, match='apt-get install'): load_fashion_mnist(source='debian')

def serve_subset(tmp_path) -> str:
    "A file:// 'server' holding the embedded subset's files under the official names."
    return copy_subset(tmp_path/'server').as_uri() + '/'

def content_sha(p: Path) -> str: return hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()

def test_download_checksum_mismatch_leaves_nothing(isolated, monkeypatch):
    monkeypatch.setattr(mds, 'FASHION_SHA256', REAL_SHA256)  # the full data's: the subset served does not match
    dest = isolated/'dl'
    with pytest.raises(ChecksumError, match='checksum mismatch') as e: download_fashion_mnist(dest, base_url=serve_subset(isolated))
    assert 'train-images-idx3-ubyte.gz' in str(e.value)
    assert list(dest.iterdir()) == []  # no partial or unverified file left behind

def test_download_verified_and_atomic(isolated, monkeypatch):
    base = serve_subset(isolated)
    monkeypatch.setattr(mds, 'FASHION_SHA256', {f: content_sha(EMBEDDED_DIR/f) for f in FASHION_FILES.values()})
    monkeypatch.setattr(mds, 'FASHION_URL', base)
    fm = load_fashion_mnist(download=True)
    cache = mds.fashion_cache_dir()
    assert fm.source == f'download: {cache}'
    assert sorted(p.name for p in cache.iterdir()) == sorted(FASHION_FILES.values())
    assert load_fashion_mnist().source.startswith('cache')  # the next call finds the cache

def test_download_needs_asking(isolated):
    assert load_fashion_mnist(download=False).source.startswith('embedded')

def test_mismatched_images_and_labels(isolated):
    d = copy_subset(isolated/'mine')
    write_idx(np.zeros(7, dtype='u1'), d/FASHION_FILES['y_valid'])
    with pytest.raises(IDXError, match='do not match'): load_fashion_mnist(path=d)

def test_show_images_checks_titles():
    from minitrain.datasets import show_images
    import matplotlib; matplotlib.use('Agg')
    ims = torch.zeros(3, 28, 28)
    assert len(show_images(ims, titles=list('abc'))) == 4  # 2x2 grid
    with pytest.raises(ValueError, match='3 images but 2 titles'): show_images(ims, titles=['a', 'b'])
    with pytest.raises(ValueError, match='no images'): show_images([])
