"The data block stage: Transform dispatch, Pipeline, Categorize, Datasets, TfmdDL, DataBlock, from_folder, decoding, stubs."
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image
from minitrain.core import set_seed
from minitrain.data import DataLoaders
from minitrain.learner import Learner, TrainCB, DeviceCB
from minitrain.vision import *
from minitrain.block import *
import minitrain.inference
from test_vision import write_folder

@pytest.fixture
def folder(tmp_path): return write_folder(tmp_path/'data')

def img(h=20, w=30): return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))

def test_type_dispatch():
    class Twice(Transform):
        def encodes(self, x: int): return 2*x
        def decodes(self, x: int): return x//2
    t = Twice()
    assert t(3) == 6 and t('a') == 'a' and t((3, 'a', 1.5)) == (6, 'a', 1.5) and t.decode((6, 'a')) == (3, 'a')
    assert Transform(str.upper)(('a', 'b')) == ('A', 'B')  # a plain function acts on every type
    x, y = Resize((8, 8))((img(), torch.tensor(1).as_subclass(TensorCategory)))
    assert x.size == (8, 8) and int(y) == 1  # the image resized, the category left alone
    b = (torch.zeros(2, 3, 4, 4, dtype=torch.uint8).as_subclass(TensorImage), torch.tensor([0, 1]).as_subclass(TensorCategory))
    xf, yf = IntToFloatTensor()(b)
    assert xf.dtype == torch.float32 and yf.dtype == torch.long
    assert IntToFloatTensor()(torch.tensor([255], dtype=torch.uint8)).item() == 1.  # a plain tensor: no type, taken

def test_pipeline_order_setup_decode():
    log = []
    class A(Transform):
        order = 2
        def encodes(self, x: int): return x + 1
        def decodes(self, x: int): log.append('A'); return x - 1
    class B(Transform):
        def encodes(self, x: int): return x*10
        def decodes(self, x: int): log.append('B'); return x//10
        def setup(self, items): self.seen = list(items)
    p = Pipeline([A, B()])  # a class and an instance; sorted by order: B first
    assert p(1) == 11 and p.decode(11) == 1 and log == ['A', 'B']  # decode in reverse
    class C(Transform):
        def setup(self, items): self.seen = list(items)
    c = C()
    Pipeline([str.upper, c]).setup(['a', 'b'])
    assert c.seen == ['A', 'B']  # set up on the items as the transforms before it made them
    p = Pipeline([ToTensor, RandomResizedCrop(8, min_scale=0.5)])
    assert [type(t) for t in p.funcs] == [RandomResizedCrop, ToTensor] and p(img()).shape == (3, 8, 8)
    assert p.valid(img()).shape == (3, 8, 8)
    with pytest.raises(TypeError, match='not callable'): Pipeline([1])

def test_categorize_sorted_vocab_and_decode():
    lbl = {'n1': 'tench', 'n2': 'church', 'n3': 'English springer'}
    tfm = Pipeline([lambda k: lbl[k], Categorize(vocab=lbl.values())])
    assert list(tfm.funcs[-1].vocab) == ['English springer', 'church', 'tench']
    assert isinstance(tfm('n1'), TensorCategory) and int(tfm('n1')) == 2 and tfm.decode(tfm('n1')) == 'tench'
    c = Categorize().setup(['b', 'a', 'b'])
    assert c.decode(torch.tensor([1, 0])) == ['b', 'a']

def test_pilimage_create(folder):
    fn = get_image_files(folder)[0]
    im = PILImage.create(fn)
    assert isinstance(im, Image.Image) and im.mode == 'RGB' and PILImage.create(im.convert('L')).mode == 'RGB'

def test_datasets_splits_vocab_decode(folder):
    fnames = get_image_files(folder)
    splits = GrandparentSplitter()(fnames)
    dsets = Datasets(fnames, [[PILImage.create], [parent_label, Categorize]], splits=splits)
    assert len(dsets.train) == 12 and len(dsets.valid) == 4 and list(dsets.vocab) == ['cat', 'dog']
    x, y = dsets[0]
    assert isinstance(x, Image.Image) and isinstance(y, TensorCategory)
    assert dsets.decode(dsets[0])[1] == parent_label(fnames[0])
    assert dsets.valid.training is False and dsets.train.training is True
    ax = dsets.show(dsets[0])
    assert ax.get_title() == parent_label(fnames[0])
    with pytest.raises(IndexError, match='there are 16 items'): Datasets(fnames, splits=([0], [99]))
    with pytest.raises(ValueError, match='validation split is empty'): Datasets(fnames).dataloaders()

def test_datasets_dataloaders_normalised_float_batches(folder):
    fnames = get_image_files(folder)
    dsets = Datasets(fnames, [[PILImage.create], [parent_label, Categorize]], splits=GrandparentSplitter()(fnames))
    dls = dsets.dataloaders(after_item=[ToTensor, RandomResizedCrop(16, min_scale=0.35)],
                            after_batch=[IntToFloatTensor, Normalize.from_stats(*imagenet_stats)], bs=4, device='cpu')
    xb, yb = next(iter(dls.train))
    assert type(xb) is torch.Tensor and xb.dtype == torch.float32 and xb.shape == (4, 3, 16, 16) and xb.mean().abs() < 2
    assert yb.dtype == torch.long and list(dls.vocab) == ['cat', 'dog']
    xd, yd = dls.train.decode((xb, yb))
    assert xd.dtype == torch.uint8 and set(yd) <= {'cat', 'dog'}
    assert dls.one_batch()[0].shape == (4, 3, 16, 16)

def test_same_batches_with_0_and_2_workers(folder):
    def run(nw):
        dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                        splitter=GrandparentSplitter(), item_tfms=RandomResizedCrop(16, min_scale=0.2),
                        batch_tfms=Normalize.from_stats(*imagenet_stats)).dataloaders(folder, bs=4, num_workers=nw)
        set_seed(0)
        return [b for _ in range(2) for b in dls.train]
    b0, b2 = run(0), run(2)
    assert len(b0) == 6 and all(torch.equal(p, q) for u, v in zip(b0, b2, strict=True) for p, q in zip(u, v))
    assert b0[0][0].dtype == torch.float32

def test_datablock_datasets_dataloaders_summary(folder, capsys):
    fnames = get_image_files(folder)
    d = DataBlock().datasets(fnames)
    assert d.train[0][0] == d.train[0][1] and isinstance(d.train[0][0], type(fnames[0]))
    lbl = {'cat': 'Cat!', 'dog': 'Dog!'}
    for get_y in (lambda f: lbl[parent_label(f)], [parent_label, lbl.__getitem__], Pipeline([parent_label, lbl.__getitem__])):
        db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=get_y,
                       splitter=GrandparentSplitter(valid_name='val'), item_tfms=Resize((8, 8)))
        assert list(db.datasets(folder).vocab) == ['Cat!', 'Dog!']
    dls = db.dataloaders(folder, bs=4)
    xb, yb = dls.one_batch()
    assert xb.dtype == torch.float32 and 0 <= xb.min() and xb.max() <= 1 and list(dls.vocab) == ['Cat!', 'Dog!']
    db.summary(folder)
    out = capsys.readouterr().out
    assert 'Categorize' in out and 'ToTensor' in out and 'IntToFloatTensor' in out and 'float32' in out
    with pytest.raises(TypeError, match='get_items'): DataBlock().datasets(folder)

def test_from_folder_arguments(folder):
    dls = DataLoaders.from_folder(folder, valid='val', item_tfms=RandomResizedCrop(8), bs=4, vocab=['dog', 'cat'])
    assert list(dls.vocab) == ['cat', 'dog'] and dls.train.bs == 4 and dls.valid.bs == 8 and dls.path == folder
    dls = DataLoaders.from_folder(folder, valid_pct=0.25, seed=0, item_tfms=Resize((8, 8)), bs=2)
    assert len(dls.valid.ds) == 4 and dls.one_batch()[0].dtype == torch.float32
    idls = ImageDataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), bs=4)
    assert isinstance(idls, ImageDataLoaders) and list(idls.vocab) == ['cat', 'dog']

def test_show_batch_and_results_decode(folder):
    import matplotlib; matplotlib.use('Agg')
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    axs = dls.show_batch(n=4)
    ims = [a.get_images()[0].get_array() for a in axs[:4]]
    assert all(np.asarray(i).min() >= 0 and np.asarray(i).max() <= 255 and np.asarray(i).max() > 1 for i in ims)
    assert {a.get_title() for a in axs[:4]} <= {'cat', 'dog'}
    set_seed(0)
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, 2)), dls, F.cross_entropy, cbs=[TrainCB(), DeviceCB('cpu')])
    axs = learn.show_results(n=4)
    a = np.asarray(axs[0].get_images()[0].get_array())
    assert a.min() >= 0 and a.max() > 1  # bytes again, not normalised values clipped by matplotlib
    label, idx, probs = learn.predict_item(dls.valid.ds.items[0])
    assert label in ('cat', 'dog') and probs.shape == (2,)

def test_stubs():
    import minitrain.all as mall
    for name in ('DataBunch', 'ImageDataBunch'):
        assert name in mall.__dict__
        with pytest.raises(NotImplementedError, match='DataLoaders'): getattr(mall, name)()
    with pytest.raises(AttributeError, match='from_folder'): ImageDataBunch.from_folder('x')
    assert getattr(ImageDataBunch, 'fget', None) is None  # tools that probe attributes (nbdev's show_doc) still work

def test_callbacks_see_prepared_batches_whatever_their_order(folder):
    "MixUp written with the default order (before DeviceCB) sees normalised floats: the DataLoader prepared them."
    from minitrain.learner import Callback
    from minitrain.augment import MixUpCB
    seen = []
    class EarlyMix(MixUpCB):
        order = -100
        def before_batch(self, learn):
            seen.append((learn.xb[0].dtype, float(learn.xb[0].mean())))
            super().before_batch(learn)
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    set_seed(0)
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, 2)), dls, F.cross_entropy, lr=0.01,
                    cbs=[TrainCB(), DeviceCB('cpu'), EarlyMix()])
    learn.fit(1)
    assert seen and all(d == torch.float32 and abs(m) < 3 for d, m in seen)

def test_in_order_copy_and_decode_before_any_batch(folder):
    from minitrain.inference import in_order
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    dl = in_order(dls.train)
    assert isinstance(dl, TfmdDL) and dl.training and not dl.sampler.shuffle
    fresh = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    set_seed(1); want = torch.rand(1)
    set_seed(1)
    x, y = fresh.valid.decode((torch.zeros(2, 3, 8, 8), torch.tensor([0, 1])))  # no batch seen yet: types found first
    assert torch.equal(torch.rand(1), want)  # ... without moving the random generators
    assert x.dtype == torch.uint8 and y == ['cat', 'dog']

def test_decode_batch_without_decode_is_identity():
    from minitrain.inference import decode_batch
    from minitrain.data import DataLoader, Dataset
    dl = DataLoader(Dataset(torch.zeros(4, 2), torch.arange(4)), bs=2)
    b = next(iter(dl))
    assert decode_batch(dl, b) is b

def test_given_transforms_replace_the_blocks_own_and_several_targets(folder):
    db = DataBlock(blocks=(ImageBlock, CategoryBlock, CategoryBlock), get_items=get_image_files, n_inp=1,
                   get_y=[parent_label, lambda f: f.stem[-1]], splitter=GrandparentSplitter(),
                   item_tfms=[ToTensor, Resize((8, 8))], batch_tfms=[IntToFloatTensor(div=255.), Normalize.from_stats(*imagenet_stats)])
    assert [type(t) if not isinstance(t, type) else t for t in db.item_tfms] == [ToTensor, Resize]
    assert len(db.batch_tfms) == 2
    dls = db.dataloaders(folder, bs=4)
    xb, y1, y2 = dls.one_batch()
    assert xb.dtype == torch.float32 and y1.shape == y2.shape == (4,)
    _, n1, n2 = dls.train.decode((xb, y1, y2))
    assert set(n1) <= {'cat', 'dog'} and all(n.isdigit() for n in n2)
    with pytest.raises(ValueError, match='one each'):
        DataBlock(blocks=(ImageBlock, CategoryBlock, CategoryBlock), n_inp=1, get_y=[parent_label, parent_label, parent_label])

def test_plot_top_losses_shows_decoded_inputs(folder):
    import matplotlib; matplotlib.use('Agg')
    from minitrain.inference import Interpretation, inputs_at
    dls = DataLoaders.from_folder(folder, item_tfms=Resize((8, 8)), batch_tfms=Normalize.from_stats(*imagenet_stats), bs=4)
    ims = inputs_at(dls.valid, [2, 0])
    assert ims.dtype == torch.uint8 and ims.shape == (2, 3, 8, 8)
    set_seed(0)
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(3*8*8, 2)), dls, F.cross_entropy, cbs=[TrainCB(), DeviceCB('cpu')])
    axs = Interpretation.from_learner(learn).plot_top_losses(k=2)
    assert np.asarray(axs[0].get_images()[0].get_array()).max() > 1  # bytes, not normalised floats
