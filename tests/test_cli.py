"The command line: `python -m minitrain train` runs end to end, writes its outputs, and rejects bad options before any work."
import json, os, subprocess, sys
import pytest
import torch
from minitrain.datasets import EMBEDDED_DIR
from minitrain.cli import main

SUBSET = {'MINITRAIN_FASHION_MNIST': str(EMBEDDED_DIR)}

def run_cli(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'minitrain', *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)

def test_train_prints_accuracy_on_the_subset(tmp_path):
    r = run_cli('train', '--epochs', '1', '--out', str(tmp_path/'run'), env=SUBSET)
    assert r.returncode == 0, r.stderr
    assert 'a subset of Fashion-MNIST' in r.stdout and 'accuracy' in r.stdout.splitlines()[2]  # says which data; metrics table
    acc = float(r.stdout.split('accuracy ')[-1].split()[0])
    assert 0.6 < acc <= 1.0, r.stdout
    out = tmp_path/'run'
    assert sorted(os.listdir(out)) == ['loss_lr.png', 'metrics.csv', 'model.pth', 'summary.json']  # no temporary files left
    from minitrain.cli import _OUTPUT_FILES
    assert sorted(_OUTPUT_FILES) == sorted(os.listdir(out))  # what --out is checked for is what is written
    summary = json.loads((out/'summary.json').read_text())
    assert summary['accuracy'] == pytest.approx(acc, abs=1e-4) and summary['images_per_s'] > 0 and not summary['full_data']
    ckpt = torch.load(out/'model.pth', weights_only=True)  # learn.save's format, which learn.load and ResumeCB read
    assert ckpt['format'] == 'minitrain checkpoint 1' and {'model', 'opt', 'epoch', 'rng', 'log'} <= ckpt.keys()
    assert json.loads((out/'summary.json').read_text())['options']['model'] == 'pool_cnn'  # the default
    assert (out/'metrics.csv').read_text().splitlines()[0] == 'accuracy,loss,epoch,train'

def test_same_seed_same_run(capsys):
    accs = []
    for _ in range(2):
        assert main(['train', '--data', str(EMBEDDED_DIR), '--model', 'mlp', '--epochs', '1', '--quiet', '--threads', '1']) == 0
        accs.append(capsys.readouterr().out.split('accuracy ')[-1].split()[0])
    assert accs[0] == accs[1]

def test_lr_find_and_constant_lr(capsys):
    main(['train', '--data', str(EMBEDDED_DIR), '--model', 'mlp', '--epochs', '1', '--lr-find', '--no-one-cycle', '--quiet'])
    assert 'lr_find suggests lr' in capsys.readouterr().out

def test_bad_option_fails_fast():
    r = run_cli('train', '--epochs', '0')
    assert r.returncode == 2 and 'positive integer' in r.stderr

@pytest.mark.parametrize('args,msg', [
    (['--bs', '-3'], 'argument --bs: must be a positive integer, got -3'),
    (['--lr', '0'], 'argument --lr: must be a learning rate in (0, 10], got 0'),
    (['--lr', 'fast'], "argument --lr: must be a learning rate in (0, 10], got 'fast'"),
    (['--workers', '-1'], 'argument --workers: must be an integer >= 0, got -1'),
    (['--model', 'vgg'], "argument --model: invalid choice: 'vgg'"),
    (['--lr', '0.1', '--lr-find'], 'not allowed with argument'),
    (['--device', 'cuda:7'] if not torch.cuda.is_available() else ['--device', 'cuda:99'], '--device cuda:'),
    (['--device', 'gpu'], "--device 'gpu' is not a torch device"),
    (['--data', '/no/such/folder'], '--data /no/such/folder: no such folder'),
    (['--out', '/proc/minitrain-out'], '--out /proc/minitrain-out: cannot write there'),
])
def test_bad_options_exit_2_with_the_reason(args, msg, capsys, monkeypatch):
    monkeypatch.setattr('minitrain.cli.train', lambda args: pytest.fail('trained despite a bad option'))
    with pytest.raises(SystemExit) as e: main(['train', *args])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err

def test_mixed_precision_needs_accel(capsys, monkeypatch):
    monkeypatch.setattr('minitrain.cli._mixed_precision_cb', lambda: None)
    with pytest.raises(SystemExit) as e: main(['train', '--mixed-precision'])
    assert e.value.code == 2 and 'minitrain.accel' in capsys.readouterr().err

def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e: main(['train', '--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for opt in ('--model', '--epochs', '--bs', '--lr', '--lr-find', '--no-one-cycle', '--wd', '--mixed-precision', '--device',
                '--workers', '--threads', '--seed', '--data', '--out', '--quiet', '--width', '--channels', '--no-flip',
                '--label-smoothing', '--no-tta'):
        assert opt in out

def test_out_with_a_folder_where_an_output_goes_fails_before_training(tmp_path, capsys, monkeypatch):
    "A folder named like an output (model.pth, ...) would make the run fail after training: refused up front."
    from minitrain.cli import _OUTPUT_FILES
    monkeypatch.setattr('minitrain.cli.train', lambda args: pytest.fail('trained despite an output it cannot write'))
    for name in _OUTPUT_FILES:
        out = tmp_path/name.replace('.', '_')
        (out/name).mkdir(parents=True)
        with pytest.raises(SystemExit) as e: main(['train', '--out', str(out)])
        assert e.value.code == 2 and f"{name} there is not a file" in capsys.readouterr().err

def test_recipe_defaults():
    "The main job's defaults are the speedrun's recipe (15a): pool_cnn, 7 epochs, flips, label smoothing, flip TTA."
    import torch.nn.functional as F
    from minitrain.cli import _parser, _create_model, _augment_cbs, _loss_func
    from minitrain.augment import BatchTransformCB, RandFlip, LabelSmoothingCrossEntropy
    parse = lambda *a: _parser()[0].parse_args(['train', *a])
    args = parse()
    assert (args.model, args.width, args.channels, args.epochs, args.flip, args.label_smoothing, args.tta) == \
        (None, 1., None, 7, True, 0.1, True)
    args.model = 'pool_cnn'  # what `train` picks for Fashion-MNIST
    n_params = lambda m: sum(p.numel() for p in m.parameters())
    chans = lambda m: [l.out_channels for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert chans(_create_model(args)) == [16, 48, 96, 192] and n_params(_create_model(args)) == 217_050
    assert chans(_create_model(parse('--model', 'pool_cnn', '--width', '0.5'))) == [8, 24, 48, 96]  # its own, times it
    assert chans(_create_model(parse('--model', 'cnn', '--width', '1.5'))) == [24, 48, 96, 192]  # --width: 16…128 times it
    assert chans(_create_model(parse('--model', 'cnn', '--channels', '24,48,96,128'))) == [24, 48, 96, 128]
    [cb] = _augment_cbs(args)
    assert isinstance(cb, BatchTransformCB) and isinstance(cb.tfm, RandFlip) and not cb.on_val
    loss = _loss_func(args)
    assert isinstance(loss, LabelSmoothingCrossEntropy) and loss.eps == 0.1
    plain = parse('--no-flip', '--label-smoothing', '0', '--no-tta', '--model', 'cnn')
    assert n_params(_create_model(plain)) == 98_682  # the course's cnn
    assert _augment_cbs(plain) == [] and _loss_func(plain) is F.cross_entropy and not plain.tta
    assert n_params(_create_model(parse('--model', 'mlp'))) == 784*256 + 256 + 256*10 + 10
    resnet = parse('--model', 'resnet', '--width', '0.5')
    assert _create_model(resnet)[0][0][0].out_channels == 8  # the stem's conv
    with pytest.raises(SystemExit): parse('--label-smoothing', '1.5')

def test_summary_says_which_accuracy(tmp_path, capsys):
    "With TTA (the default) the accuracy is flip TTA's, the plain one beside it; --no-tta reports the plain one."
    for extra, tta in (([], 'flip'), (['--no-tta'], None)):
        out = tmp_path/str(tta)
        assert main(['train', '--data', str(EMBEDDED_DIR), '--model', 'mlp', '--epochs', '1', '--quiet', '--threads', '1',
                     '--out', str(out), *extra]) == 0
        printed = capsys.readouterr().out
        s = json.loads((out/'summary.json').read_text())
        assert s['tta'] == tta and 0.5 < s['accuracy_no_tta'] <= 1
        assert ('with flip TTA' in printed) == bool(tta)
        if not tta: assert s['accuracy'] == s['accuracy_no_tta']

def test_mixed_precision_by_default_where_faster(monkeypatch):
    "By default bfloat16 autocast on a CPU where it measures faster, quietly float32 elsewhere; off, auto, force as asked."
    import minitrain.accel
    from minitrain.cli import _parser, _mixed_precision
    parse = lambda *a: _parser()[0].parse_args(['train', *a])
    for fast in (True, False):
        monkeypatch.setattr(minitrain.accel, 'bf16_fast_here', lambda device_type='cpu', fast=fast: (fast, 'measured'))
        assert _mixed_precision(parse()) == ('auto' if fast else None)
        assert _mixed_precision(parse('--mixed-precision', 'off')) is None
        assert _mixed_precision(parse('--mixed-precision')) == 'auto'
        assert _mixed_precision(parse('--mixed-precision', 'force')) == 'force'
    monkeypatch.setattr(minitrain.accel, 'bf16_fast_here', lambda device_type='cpu': pytest.fail('measured for a GPU'))
    assert _mixed_precision(parse('--device', 'cuda')) is None  # a GPU trains in float32 unless asked

def test_out_leaves_pyplot_alone(tmp_path, capsys):
    "Writing loss_lr.png keeps the caller's matplotlib backend and pyplot figures (main in a Jupyter kernel plots on)."
    import matplotlib
    import matplotlib.pyplot as plt
    before, figs = matplotlib.get_backend(), plt.get_fignums()
    matplotlib.use('svg')  # any backend but Agg: the command used to switch to Agg
    try:
        assert main(['train', '--data', str(EMBEDDED_DIR), '--model', 'mlp', '--epochs', '1', '--quiet',
                     '--threads', '1', '--out', str(tmp_path/'run')]) == 0
        assert matplotlib.get_backend() == 'svg' and plt.get_fignums() == figs
        assert (tmp_path/'run'/'loss_lr.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    finally: matplotlib.use(before)

def test_channels_option(capsys):
    "--channels sets each stage of the conv models; it is checked before any work and refused with --width or the mlp."
    from minitrain.cli import _parser, _create_model
    parse = lambda *a: _parser()[0].parse_args(['train', *a])
    convs = lambda m: [l for l in m.modules() if isinstance(l, torch.nn.Conv2d) and l.kernel_size != (1, 1)]
    chans = lambda m: [l.out_channels for l in convs(m)]
    assert chans(_create_model(parse('--model', 'cnn', '--channels', '8,16,32'))) == [8, 16, 32]
    # resnet: its stem (the first stage's channels), then one block
    assert chans(_create_model(parse('--model', 'resnet', '--channels', '8,16'))) == [8, 16, 16]
    assert chans(_create_model(parse('--model', 'pool_cnn', '--channels', '8'))) == [8]  # its stem alone
    for bad, says in ((['--channels', '8,0'], 'positive integers'), (['--channels', '8,x'], 'positive integers'),
                      (['--channels', '8', '--width', '2'], 'not allowed with'),
                      (['--model', 'mlp', '--channels', '8'], 'use --width')):
        with pytest.raises(SystemExit) as e: main(['train', *bad])
        assert e.value.code == 2 and says in capsys.readouterr().err
