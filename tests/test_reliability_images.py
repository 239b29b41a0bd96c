"Images as a hostile user gives them: 16-bit and float modes, files an image folder leaves out, bad validation images."
import warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from torch import nn
from PIL import Image
from minitrain.data import DataLoaders
from minitrain.learner import Learner, Callback, TrainCB
from minitrain.vision import ImageError, load_image, PILImage, Resize, verify_images
from minitrain.block import DataBlock, ImageBlock, CategoryBlock, GrandparentSplitter, get_image_files, parent_label

def write_folder(root: Path, classes=('cat', 'dog'), n=(4, 2), size=(12, 12)) -> Path:
    "An Imagenette-style folder: `n` = (train, val) RGB PNGs per class."
    rng = np.random.default_rng(0)
    for split, k in zip(('train', 'val'), n):
        for c in classes:
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for i in range(k):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root/split/c/f'{c}{i}.png')
    return root

# --- 16-bit and float images (they were saturated to white, or turned black)

GRADIENT = np.arange(0, 65536, 4096, dtype=np.uint16).reshape(4, 4)  # 0 .. 61440

def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    Image.fromarray(GRADIENT).save(tmp_path/'g.png')
    assert Image.open(tmp_path/'g.png').mode.startswith('I')
    got = np.asarray(load_image(tmp_path/'g.png')).astype(int)
    assert got.shape == (4, 4, 3) and (got[..., 0] == got[..., 2]).all()
    assert np.abs(got[..., 0] - GRADIENT/257).max() <= 1, got[..., 0]  # 0..65535 -> 0..255
    assert np.abs(np.asarray(load_image(tmp_path/'g.png', mode='L')).astype(int) - GRADIENT/257).max() <= 1

def test_32_bit_int_tiff_read_as_16_bit(tmp_path):
    Image.fromarray(GRADIENT.astype(np.int32)).save(tmp_path/'i.tif')
    assert Image.open(tmp_path/'i.tif').mode == 'I'
    assert np.abs(np.asarray(load_image(tmp_path/'i.tif', mode='L')).astype(int) - GRADIENT/257).max() <= 1

def test_float_image_0_to_1_is_scaled_not_black(tmp_path):
    Image.fromarray((GRADIENT/65535).astype(np.float32)).save(tmp_path/'f.tif')
    got = np.asarray(load_image(tmp_path/'f.tif', mode='L')).astype(int)
    assert np.abs(got - GRADIENT/257).max() <= 1, got

def test_float_image_0_to_255_unchanged(tmp_path):
    Image.fromarray((GRADIENT/257).astype(np.float32)).save(tmp_path/'f.tif')
    got = np.asarray(load_image(tmp_path/'f.tif', mode='L')).astype(int)
    assert np.abs(got - GRADIENT/257).max() <= 1, got

def test_in_memory_16_bit_image_scaled_too():
    got = np.asarray(PILImage.create(Image.fromarray(GRADIENT), mode='L')).astype(int)
    assert np.abs(got - GRADIENT/257).max() <= 1

@pytest.mark.parametrize('arr, msg', [(np.full((3, 3), 1000., np.float32), '0 to 1'),
                                      (np.array([[np.nan, 0.5]], np.float32), 'NaN'),
                                      (np.array([[-5, 70000]], np.int32), '65535')])
def test_values_out_of_range_named_with_file(tmp_path, arr, msg):
    Image.fromarray(arr).save(tmp_path/'x.tif')
    with pytest.raises(ImageError, match=f'x.tif.*{msg}'): load_image(tmp_path/'x.tif')
    assert [(p.name, msg in why) for p, why in verify_images([tmp_path/'x.tif'])] == [('x.tif', True)]

# --- what an image folder leaves out is reported

def test_image_directly_in_train_reported(tmp_path):
    root = write_folder(tmp_path/'data')
    Image.new('RGB', (12, 12)).save(root/'train'/'stray.png')
    (root/'val'/'dog'/'notes.txt').write_text('not an image')
    (root/'train'/'cat'/'.DS_Store').write_bytes(b'')  # hidden: not reported
    with pytest.warns(UserWarning, match=r'left out 2 file.*train/stray\.png.*class folder.*val/dog/notes\.txt') as rec:
        dls = DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4)
    assert 'DS_Store' not in str(rec[0].message)
    assert sorted(p.name for p, _ in dls.left_out) == ['notes.txt', 'stray.png']
    assert len(dls.train.ds) == 8 and len(dls.valid.ds) == 4

def test_image_too_deep_reported(tmp_path):
    root = write_folder(tmp_path/'data')
    (root/'train'/'cat'/'more').mkdir()
    Image.new('RGB', (12, 12)).save(root/'train'/'cat'/'more'/'deep.png')
    with pytest.warns(UserWarning, match=r'train/cat/more/deep\.png'):
        DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4)

def test_clean_folder_reports_nothing(tmp_path):
    root = write_folder(tmp_path/'data')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        dls = DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4)
    assert dls.left_out == []

# --- a bad validation image is found before training, not after an epoch

class CountBatches(Callback):
    n = 0
    def after_batch(self, learn): self.n += 1

def tiny_learner(dls, cb):
    return Learner(nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, 2)), dls, lr=0.1, cbs=[TrainCB(), cb])

def test_bad_validation_image_refused_before_training(tmp_path):
    root = write_folder(tmp_path/'data')
    (root/'val'/'dog'/'dog1.png').write_bytes(b'not an image at all')
    dls = DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4)
    learn = tiny_learner(dls, cb := CountBatches())
    w = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ImageError, match=r'dog1\.png.*before training.*skip_bad=True'): learn.fit(1)
    assert cb.n == 0 and all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))
    learn.fit(1, valid=False)  # training alone does not need them
    assert cb.n == 2

def test_bad_validation_image_refused_with_a_data_block(tmp_path):
    root = write_folder(tmp_path/'data')
    (root/'val'/'cat'/'cat0.png').write_bytes(b'\x89PNG truncated')
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=GrandparentSplitter(valid_name='val'), item_tfms=Resize((8, 8)))
    learn = tiny_learner(dblock.dataloaders(root, bs=4), cb := CountBatches())
    with pytest.raises(ImageError, match=r'cat0\.png'): learn.fit(1)
    assert cb.n == 0

def test_good_validation_images_checked_once(tmp_path, monkeypatch):
    import minitrain.block as block
    root = write_folder(tmp_path/'data')
    dls = DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4)
    calls = []
    monkeypatch.setattr(block, 'verify_images', lambda fs: calls.append(list(fs)) or [])
    learn = tiny_learner(dls, CountBatches())
    learn.fit(1); learn.fit(1)
    assert len(calls) == 1 and len(calls[0]) == 4

def test_skip_bad_names_what_it_skipped(tmp_path):
    root = write_folder(tmp_path/'data')
    (root/'val'/'dog'/'dog1.png').write_bytes(b'junk')
    (root/'train'/'cat'/'cat2.png').write_bytes(b'junk')
    with pytest.warns(UserWarning, match=r'skipped 2 unreadable.*train/cat/cat2\.png.*val/dog/dog1\.png'):
        dls = DataLoaders.from_folder(root, item_tfms=Resize((8, 8)), bs=4, skip_bad=True)
    learn = tiny_learner(dls, cb := CountBatches())
    learn.fit(1)
    assert cb.n == 2 + 1

def test_to_tensor_scales_16_bit_and_float_images():
    from minitrain.vision import ToTensor
    for im in (Image.fromarray(GRADIENT), Image.fromarray((GRADIENT/65535).astype(np.float32))):
        got = ToTensor()(im)
        assert got.dtype == torch.uint8 and (got[0].int() - torch.tensor(GRADIENT/257)).abs().max() <= 1, got

def test_random_split_leaves_out_images_outside_class_folders(tmp_path):
    root = tmp_path/'data'
    for c in ('cat', 'dog'):
        (root/c).mkdir(parents=True)
        for i in range(4): Image.new('RGB', (12, 12), (60*i, 0, 0)).save(root/c/f'{i}.png')
    Image.new('RGB', (12, 12)).save(root/'stray.png')
    (root/'labels.csv').write_text('a top-level note is not reported')
    with pytest.warns(UserWarning, match=r'left out 1 file.*stray\.png \(directly in data/') as rec:
        dls = DataLoaders.from_folder(root, valid_pct=0.25, seed=0, item_tfms=Resize((8, 8)), bs=2)
    assert 'labels.csv' not in str(rec[0].message)
    assert list(dls.vocab) == ['cat', 'dog'] and len(dls.train.ds) + len(dls.valid.ds) == 8
    for f in root.glob('*/*.png'): f.rename(root/f'{f.parent.name}{f.name}')
    with pytest.raises(ValueError, match='every image is directly in'):
        DataLoaders.from_folder(root, valid_pct=0.25, item_tfms=Resize((8, 8)))
    (root/'stray.png').unlink()  # a label function of its own: images directly in the folder are fine
    dls = DataLoaders.from_folder(root, valid_pct=0.25, seed=0, item_tfms=Resize((8, 8)), label_func=lambda f: f.stem[:3])
    assert len(dls.train.ds) + len(dls.valid.ds) == 8 and list(dls.vocab) == ['cat', 'dog']

def test_image_dataset_validation_images_checked_before_fit(tmp_path):
    from minitrain.vision import ImageDataset
    root = write_folder(tmp_path/'data')
    (root/'val'/'cat'/'cat1.png').write_bytes(b'junk')
    files = get_image_files(root)
    tr = [f for f in files if f.parts[-3] == 'train']; va = [f for f in files if f.parts[-3] == 'val']
    ds = lambda fs: ImageDataset(fs, [int(f.parent.name == 'dog') for f in fs], Resize((8, 8)))
    dls = DataLoaders.from_dsets(ds(tr), ds(va), bs=4)
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, 2)), dls, loss_func=torch.nn.functional.cross_entropy,
                    cbs=[TrainCB(), cb := CountBatches()])
    with pytest.raises(ImageError, match=r'cat1\.png'): learn.fit(1)
    assert cb.n == 0

def test_valid_check_leaves_other_data_alone():
    from minitrain.learner import TrainCB
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    dls = DataLoaders([(x, y)], [(x, y)])  # plain lists of batches: nothing to verify, nothing to mark
    learn = Learner(nn.Linear(3, 2), dls, loss_func=torch.nn.functional.cross_entropy, cbs=TrainCB())
    learn.fit(1)
    assert learn.fit_status == 'done'

def test_valid_images_check_registered_once():
    f = Learner.checks['fit']['valid_images']
    assert f.__module__ == 'minitrain.block'
    Learner.checks['fit'].update(valid_images=f)  # what a second run of the cell does
    assert list(Learner.checks['fit']).count('valid_images') == 1
