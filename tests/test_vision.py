"Image folders: files, labels, splits, vocabulary, Pillow modes, item transforms, seeded loading, batch transforms, untar_data."
import functools, gc, http.server, io, multiprocessing, os, random, tarfile, threading, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image
from minitrain.core import set_seed
from minitrain.data import DataLoaders
from minitrain.datasets import ChecksumError
from minitrain.learner import Learner, TrainCB, DeviceCB, Callback
from minitrain.vision import *
from minitrain.block import *

def write_folder(root: Path, classes=('cat', 'dog'), n=(6, 2), size=(24, 40)) -> Path:
    "A small Imagenette-style folder: `n` = (train, val) RGB JPEGs per class, sizes varying around `size`."
    rng = np.random.default_rng(0)
    for split, k in zip(('train', 'val'), n):
        for c in classes:
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for i in range(k):
                h, w = size[0] + i, size[1] - i
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root/split/c/f'{c}{i}.jpg')
    return root

@pytest.fixture
def folder(tmp_path): return write_folder(tmp_path/'data')

# --- files, labels, splits, vocabulary

def test_get_image_files_sorted_extensions_hidden(tmp_path):
    for p in ['b/2.JPEG', 'a/1.png', 'a/z.txt', '.hidden/3.jpg', 'a/deep/4.webp', 'c.jpg']:
        (tmp_path/p).parent.mkdir(parents=True, exist_ok=True); (tmp_path/p).write_bytes(b'')
    got = [str(f.relative_to(tmp_path)) for f in get_image_files(tmp_path)]
    assert got == ['a/1.png', 'a/deep/4.webp', 'b/2.JPEG', 'c.jpg']
    assert [f.name for f in get_image_files(tmp_path, folders=['b', 'a'], recurse=False)] == ['1.png', '2.JPEG']
    with pytest.raises(FileNotFoundError, match='no folder'): get_image_files(tmp_path, folders='nope')
    with pytest.raises(FileNotFoundError, match='not a folder'): get_image_files(tmp_path/'c.jpg')

def test_splitters(folder):
    files = get_image_files(folder)
    tr, va = GrandparentSplitter()(files)
    assert [parent_label(files[i]) for i in va] == ['cat']*2 + ['dog']*2 and len(tr) == 12
    with pytest.raises(ValueError, match="'valid'.*found: train, val"): GrandparentSplitter(valid_name='valid')(files)
    a, b = RandomSplitter(0.25, seed=3)(files), RandomSplitter(0.25, seed=3)(files)
    assert a == b and len(a[1]) == 4 and sorted(a[0] + a[1]) == list(range(16))
    assert RandomSplitter(0.25, seed=4)(files) != a
    with pytest.raises(ValueError, match='between 0 and 1'): RandomSplitter(1.5)
    with pytest.raises(ValueError, match='empty split'): RandomSplitter(0.1)(files[:3])

def test_vocab_and_categorize():
    cat = Categorize().setup(['dog', 'cat', 'dog'])
    assert list(cat.vocab) == ['cat', 'dog'] and cat('dog') == 1 and cat.decode(torch.tensor(0)) == 'cat'
    with pytest.raises(KeyError, match="'bird' is not in the vocabulary"): cat('bird')
    assert list(Categorize(vocab=['z', 'a']).setup(['a']).vocab) == ['a', 'z']  # a given vocabulary is sorted, as fastai
    assert list(Categorize(vocab=['z', 'a'], sort=False).vocab) == ['z', 'a']
    with pytest.raises(RuntimeError, match='setup'): Categorize()('a')
    assert IMAGENETTE_LABELS['n03425413'] == 'gas pump' and len(IMAGENETTE_LABELS) == 10

# --- Pillow modes and bad files

def test_modes_become_rgb(tmp_path):
    rgba = Image.new('RGBA', (5, 4), (10, 20, 30, 0)); rgba.putpixel((0, 0), (10, 20, 30, 255))
    p = Image.new('P', (5, 4)); p.putpalette([0, 0, 0, 200, 100, 50] + [0]*762); p.putpixel((1, 1), 1)
    cmyk = Image.new('CMYK', (5, 4), (0, 255, 255, 0))  # pure red in print colours
    cases = {'rgba.png': rgba, 'p.png': p, 'p.gif': p, 'l.jpg': Image.new('L', (5, 4), 128),
             'cmyk.jpg': cmyk, 'rgb.jpg': Image.new('RGB', (5, 4), (0, 0, 255))}
    for name, im in cases.items(): im.save(tmp_path/name)
    out = {n: np.asarray(load_image(tmp_path/n)).astype(int) for n in cases}
    assert all(a.shape == (4, 5, 3) for a in out.values())
    assert out['rgba.png'][0, 0].tolist() == [10, 20, 30] and out['rgba.png'][3, 4].tolist() == [255, 255, 255]  # transparent -> white
    assert out['p.png'][1, 1].tolist() == [200, 100, 50]
    assert abs(out['l.jpg'] - 128).max() <= 2 and out['l.jpg'].std(-1).max() == 0
    assert (abs(out['cmyk.jpg'] - [255, 0, 0]).max() <= 3), out['cmyk.jpg'][0, 0]
    assert load_image(tmp_path/'l.jpg', mode='L').mode == 'L'

def test_bad_images_named_and_skipped(folder):
    bad = folder/'train'/'cat'/'cat0.jpg'
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    (folder/'val'/'dog'/'dog1.jpg').write_bytes(b'not an image at all')
    with pytest.raises(ImageError, match='cat0.jpg'): load_image(bad)
    assert sorted(p.name for p, _ in verify_images(get_image_files(folder))) == ['cat0.jpg', 'dog1.jpg']
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((16, 16)), bs=4)
    with pytest.raises(ImageError, match='dog1.jpg'): list(dls.valid)
    with pytest.warns(UserWarning, match='skipped 2 unreadable'):
        dls = DataLoaders.from_folder(folder, item_tfms=Resize((16, 16)), bs=4, skip_bad=True)
    assert len(dls.skipped) == 2 and len(dls.train.ds) == 11 and len(dls.valid.ds) == 3
    assert sum(len(b[0]) for b in dls.valid) == 3

def test_bad_image_in_worker_names_file(folder):
    (folder/'train'/'dog'/'dog3.jpg').write_bytes(b'\xff\xd8garbage')
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((16, 16)), bs=4, num_workers=2)
    with pytest.raises(ImageError, match='dog3.jpg'): list(dls.train)

# --- item transforms

def test_item_transforms():
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    assert Resize(15)(im).size == (25, 15) and Resize((7, 9))(im).size == (9, 7)
    c = CenterCrop(40)(im)  # wider than tall: padded with black above and below
    a = np.asarray(c)
    assert c.size == (40, 40) and a[:5].max() == 0 and np.array_equal(a[5:35], np.asarray(im)[:, 5:45])
    rrc = RandomResizedCrop((12, 16), min_scale=0.3)
    random.seed(1)
    for _ in range(50):
        l, t, r, b = rrc.box(50, 30)
        assert 0 <= l < r <= 50 and 0 <= t < b <= 30 and (r - l)*(b - t) >= 0.3*1500*0.9
    assert rrc(im).size == (16, 12)
    yy, xx = np.mgrid[0:30, 0:50]
    smooth = Image.fromarray(np.stack([xx*5, yy*8, xx*2 + yy*3], -1).astype(np.uint8))
    a, b = (np.asarray(o, dtype=float) for o in (RandomResizedCrop(20).valid(smooth), CenterCrop(20)(Resize(20)(smooth))))
    assert np.abs(a - b).mean() < 4  # the same central square; the resampling grids differ by a fraction of a pixel
    x = ToTensor()(im)
    assert x.dtype == torch.uint8 and x.shape == (3, 30, 50) and torch.equal(x.permute(1, 2, 0), torch.from_numpy(np.array(im)))
    assert ToTensor()(im.convert('L')).shape == (1, 30, 50)
    for bad in (dict(min_scale=0), dict(ratio=(2, 1))):
        with pytest.raises(ValueError): RandomResizedCrop(8, **bad)

def test_pipeline_valid_uses_valid_versions():
    class T:
        def __call__(self, x): return x + ['train']
        def valid(self, x): return x + ['valid']
    p = Pipeline([T(), lambda x: x + ['f']])
    assert p([]) == ['train', 'f'] and p.valid([]) == ['valid', 'f']
    with pytest.raises(TypeError, match='not callable'): Pipeline([1])

# --- datasets and loaders

def test_test_dl_matches_validation(folder):
    dls = DataLoaders.from_folder(folder, item_tfms=RandomResizedCrop(16), bs=4)
    ds = dls.valid.ds
    xb, yb = dls.valid.one_batch()
    for item in (ds.items[1], Image.open(ds.items[1])):
        assert torch.equal(dls.valid.test_dl([item]).one_batch()[0][0], xb[1])
    assert ds.vocab[int(yb[1])] == parent_label(ds.items[1]) and dls.train.ds.vocab is ds.vocab

def batches(folder, nw, seed=0, epochs=2, **kwargs):
    dls = DataLoaders.from_folder(folder, item_tfms=RandomResizedCrop(16, min_scale=0.2), bs=4, num_workers=nw, **kwargs)
    set_seed(seed)
    return [b for _ in range(epochs) for b in dls.train]

def test_same_seed_same_batches_with_0_and_2_workers(folder):
    b0, b2 = batches(folder, 0), batches(folder, 2)
    assert len(b0) == 6 and all(torch.equal(p, q) for u, v in zip(b0, b2) for p, q in zip(u, v))
    b1 = batches(folder, 0, seed=1)
    assert not all(torch.equal(u[0], v[0]) for u, v in zip(b0, b1))
    # each epoch draws new crops: the same item differs between the two epochs
    assert not torch.equal(torch.cat([b[0] for b in b0[:3]]), torch.cat([b[0] for b in b0[3:]]))

def test_persistent_workers_are_told_each_epoch_seed(folder):
    b0, b2 = batches(folder, 0, epochs=3), batches(folder, 2, epochs=3, persistent_workers=True)
    assert all(torch.equal(p, q) for u, v in zip(b0, b2, strict=True) for p, q in zip(u, v))
    gc.collect()
    assert multiprocessing.active_children() == []

def test_main_generators_move_the_same_with_and_without_workers(folder):
    after = []
    for nw in (0, 2):
        batches(folder, nw, epochs=1)
        after.append((random.random(), torch.rand(1)))
    assert after[0] == after[1]

def test_seeded_restores_generators():
    set_seed(5); want = (random.random(), torch.rand(1))
    set_seed(5)
    with seeded(123): inner = torch.rand(1)
    assert (random.random(), torch.rand(1)) == want
    with seeded(123): assert torch.equal(torch.rand(1), inner)
    set_seed(5)
    with seeded(): reseed(7); torch.rand(3)  # no seed: only saved and restored
    assert (random.random(), torch.rand(1)) == want
    assert item_seed(1, 2) != item_seed(2, 1) and 0 <= item_seed(2**62, 10**9) < 2**63

def test_from_folder_errors(tmp_path, folder):
    (tmp_path/'empty'/'train').mkdir(parents=True); (tmp_path/'empty'/'val').mkdir()
    with pytest.raises(ValueError, match='no image files'): DataLoaders.from_folder(tmp_path/'empty')
    with pytest.raises(FileNotFoundError, match="no 'valid' folder.*found: train, val"): DataLoaders.from_folder(folder, valid='valid')
    with pytest.raises(FileNotFoundError, match='not a folder'): DataLoaders.from_folder(tmp_path/'nope')
    (folder/'val'/'bird').mkdir(); (folder/'val'/'cat'/'cat0.jpg').rename(folder/'val'/'bird'/'b.jpg')
    with pytest.raises(ValueError, match="'bird' have no training images"): DataLoaders.from_folder(folder)

def test_from_folder_random_split_and_label_func(folder):
    dls = DataLoaders.from_folder(folder, valid_pct=0.25, seed=0, item_tfms=Resize((8, 8)), label_func=lambda f: f.stem[:3].upper())
    assert list(dls.vocab) == ['CAT', 'DOG'] and len(dls.train.ds) + len(dls.valid.ds) == 16 and len(dls.valid.ds) == 4
    again = DataLoaders.from_folder(folder, valid_pct=0.25, seed=0, item_tfms=Resize((8, 8)))
    assert again.valid.ds.items == dls.valid.ds.items

# --- batch transforms

def test_normalize():
    x = torch.rand(2, 3, 4, 5)
    n = Normalize.from_stats(*imagenet_stats)
    assert torch.allclose(n(x)*torch.tensor(imagenet_stats[1])[:, None, None] + torch.tensor(imagenet_stats[0])[:, None, None], x, atol=1e-6)
    assert torch.allclose(n.decode(n(x)), x, atol=1e-6)
    with pytest.raises(TypeError, match='IntToFloatTensor'): n(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match='N×3×H×W'): n(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match='positive'): Normalize([0.], [0.])
    assert torch.equal(IntToFloatTensor()(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0., 1.]))

def test_batch_tfms_reach_the_model_in_training_and_validation(folder):
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    assert isinstance(dls.train.after_batch.funcs[0], IntToFloatTensor) and len(dls.train.after_batch.funcs) == 2
    seen = []
    class Spy(Callback):
        order = 100
        def before_batch(self, learn): seen.append((learn.training, learn.batch[0].dtype, float(learn.batch[0].mean())))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, len(dls.vocab)))
    learn = Learner(model, dls, F.cross_entropy, lr=0.01, cbs=[TrainCB(), DeviceCB('cpu'), Spy()])
    learn.fit(1)
    assert {t for t, _, _ in seen} == {True, False} and all(d == torch.float32 for _, d, _ in seen)
    assert all(abs(m) < 3 for *_, m in seen)  # normalised, not bytes

def test_predict_item_applies_item_tfm_and_batch_tfms(folder):
    "learn.predict_item (inference stage) on a file or a Pillow image: the validation item transforms, then the batch transforms (test_dl)."
    import minitrain.inference  # adds Learner.predict_item
    dls = DataLoaders.from_folder(folder, item_tfms=RandomResizedCrop(8), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    set_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, len(dls.vocab)))
    learn = Learner(model, dls, F.cross_entropy, cbs=[TrainCB(), DeviceCB('cpu')])
    fn = dls.valid.ds.items[0]
    xb = dls.valid.after_batch.valid(dls.valid.after_item.valid((PILImage.create(fn),))[0][None].as_subclass(TensorImage))
    with torch.no_grad(): want = model(xb).softmax(1)[0]
    for item in (fn, load_image(fn)):
        label, idx, probs = learn.predict_item(item)
        torch.testing.assert_close(probs, want)
        assert idx == want.argmax() and label == dls.vocab[int(want.argmax())]

# --- untar_data

def make_archive(tmp_path, members=None, name='tiny.tgz') -> Path:
    src = write_folder(tmp_path/'src'/'tiny', n=(2, 1))
    arc = tmp_path/name
    with tarfile.open(arc, 'w:gz') as tf:
        tf.add(src, arcname='tiny')
        for m, data in (members or []):
            tf.addfile(m, io.BytesIO(data) if data is not None else None)
    return arc

@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path/'cache'
    monkeypatch.setenv('MINITRAIN_DATA', str(d))
    return d

def leftovers(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob('*') if p.name.endswith(('.part', '.tmp'))) if d.exists() else []

def test_untar_data_file_url_and_reuse(tmp_path, cache):
    arc = make_archive(tmp_path)
    ck = file_checksum(arc)
    got = untar_data(arc.as_uri(), checksum=ck, progress=False)
    assert got == cache/'tiny' and len(get_image_files(got)) == 6 and (cache/'archives'/'tiny.tgz').is_file()
    arc.unlink(); (cache/'archives'/'tiny.tgz').unlink()  # nothing left to download from: the verified copy is reused
    assert untar_data(arc.as_uri(), checksum=ck) == got
    with pytest.raises(FileExistsError, match='not extracted from this archive'):
        untar_data(arc.as_uri(), checksum=(ck[0] + 1, ck[1]))
    assert leftovers(cache) == []

def test_untar_data_http_server_and_fastai_checksum(tmp_path, cache):
    arc = make_archive(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    try:
        url = f'http://127.0.0.1:{srv.server_address[1]}/tiny.tgz'
        got = untar_data(url, dest=tmp_path/'out', checksum=file_checksum(arc, 'md5-1mib'), progress=False)
    finally: srv.shutdown(); srv.server_close(); th.join()
    assert got == tmp_path/'out'/'tiny' and len(get_image_files(got)) == 6

def test_checksum_mismatch_keeps_nothing(tmp_path, cache):
    arc = make_archive(tmp_path)
    size, digest = file_checksum(arc)
    for bad in ((size, '0'*64), (size + 5, digest), (size - 5, digest)):
        with pytest.raises(ChecksumError, match='not'): untar_data(arc.as_uri(), checksum=bad, progress=False)
        assert not (cache/'archives'/'tiny.tgz').exists() and not (cache/'tiny').exists() and leftovers(cache) == []
    with pytest.raises(ValueError, match='no checksum known'): untar_data(arc.as_uri())
    with pytest.raises(ValueError, match='hex digits'): untar_data(arc.as_uri(), checksum=(size, 'abc'))

def _member(name, type=tarfile.REGTYPE, linkname='', data=b'x'):
    m = tarfile.TarInfo(name); m.type, m.linkname = type, linkname
    m.size = len(data) if type == tarfile.REGTYPE else 0
    return m, data if type == tarfile.REGTYPE else None

@pytest.mark.parametrize('member', [
    _member('../evil.txt'), _member('/tmp/evil.txt'), _member('tiny/../../evil.txt'),
    _member('tiny/link', tarfile.SYMTYPE, '../../outside'), _member('tiny/abs', tarfile.SYMTYPE, '/etc/passwd'),
    _member('tiny/hard', tarfile.LNKTYPE, '../outside'), _member('tiny/dev', tarfile.CHRTYPE)],
    ids=['dotdot', 'absolute', 'nested-dotdot', 'symlink-out', 'symlink-abs', 'hardlink-out', 'device'])
def test_escaping_members_refused(tmp_path, cache, member):
    arc = make_archive(tmp_path, [member])
    with pytest.raises(UnsafeArchiveError, match='refused'): untar_data(arc.as_uri(), checksum=file_checksum(arc), progress=False)
    assert not (cache/'tiny').exists() and leftovers(cache) == [] and not (tmp_path/'evil.txt').exists()

def test_member_through_a_link_refused(tmp_path, cache):
    arc = make_archive(tmp_path, [_member('tiny/d', tarfile.SYMTYPE, '.'), _member('tiny/d/e', tarfile.SYMTYPE, '..'),
                                  _member('tiny/d/e/x.txt')])
    with pytest.raises(UnsafeArchiveError, match='inside a link'): untar_data(arc.as_uri(), checksum=file_checksum(arc))

def test_links_inside_are_fine(tmp_path, cache):
    arc = make_archive(tmp_path, [_member('tiny/alias.jpg', tarfile.SYMTYPE, 'train/cat/cat0.jpg')])
    got = untar_data(arc.as_uri(), checksum=file_checksum(arc), progress=False)
    assert (got/'alias.jpg').is_symlink()

def test_imagenette_checks_from_fastai():
    assert DATASET_CHECKS[URLs.IMAGENETTE_160] == (99003388, 'c475f8f7617a200ba35b9facc48443c3')
    assert URLs.IMAGENETTE_320.endswith('imagenette2-320.tgz') and URLs.IMAGENETTE in DATASET_CHECKS

# --- the command line

def test_cli_trains_on_an_image_folder(folder, tmp_path, capsys):
    from minitrain.cli import main
    out = tmp_path/'run'
    assert main(['train', '--images', str(folder), '--size', '16', '--epochs', '1', '--bs', '4', '--out', str(out), '--quiet',
                 '--device', 'cpu', '--threads', '1']) == 0
    assert sorted(os.listdir(out)) == ['loss_lr.png', 'metrics.csv', 'model.pth', 'summary.json']
    import json
    s = json.loads((out/'summary.json').read_text())
    assert s['classes'] == ['cat', 'dog'] and s['valid_images'] == 4 and s['options']['model'] == 'resnet'
    ckpt = torch.load(out/'model.pth', weights_only=False)
    assert ckpt['model']['0.0.0.weight'].shape[1] == 3 and ckpt['model'][[k for k in ckpt['model'] if k.endswith('weight')][-1]].shape[0] == 2
    assert '2 classes, 12 train and 4 valid images, 3 channels' in capsys.readouterr().out

@pytest.mark.parametrize('extra,msg', [(['--model', 'mlp'], 'mlp takes 28×28'), (['--data', '.'], 'give one')])
def test_cli_image_options_checked(folder, capsys, extra, msg):
    from minitrain.cli import main
    with pytest.raises(SystemExit) as e: main(['train', '--images', str(folder), *extra])
    assert e.value.code == 2 and msg in capsys.readouterr().err

def test_cli_images_without_train_val(tmp_path, capsys):
    from minitrain.cli import main
    (tmp_path/'photos'/'train').mkdir(parents=True)
    with pytest.raises(SystemExit) as e: main(['train', '--images', str(tmp_path/'photos')])
    assert e.value.code == 2 and 'no val/ folder' in capsys.readouterr().err

def test_archive_of_dot_extracts_under_its_name(tmp_path, cache):
    src = write_folder(tmp_path/'src', n=(1, 1))
    arc = tmp_path/'flat.tar.gz'
    with tarfile.open(arc, 'w:gz') as tf: tf.add(src, arcname='.')
    got = untar_data(arc.as_uri(), checksum=file_checksum(arc), progress=False)
    assert got == cache/'flat' and sorted(p.name for p in got.iterdir() if not p.name.startswith('.')) == ['train', 'val']
