"Every plotting function of the library labels both axes of every plot it draws (images excepted)."
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest, torch
import torch.nn.functional as F
from torch import nn
from minitrain.core import set_seed
from minitrain.data import Dataset, DataLoaders
from minitrain.learner import Learner, TrainCB
from minitrain.schedule import LRFinderCB, RecorderCB, rec_lr, rec_loss
from minitrain.hooks import ActivationStats
from minitrain.init import plot_func
from minitrain.inference import plot_confusion_matrix

def unlabelled(fig) -> list[str]:
    "The plots of `fig` (visible axes that draw lines, bars or points, not an image) missing an x or a y label."
    return [f"{ax.get_title() or 'axes'}: x {ax.get_xlabel()!r}, y {ax.get_ylabel()!r}" for ax in fig.axes
            if ax.axison and not ax.images and (ax.lines or ax.patches or ax.collections)
            and not (ax.get_xlabel() and ax.get_ylabel())]

@pytest.fixture
def learn():
    set_seed(0)
    x = torch.randn(64, 4); y = x @ torch.randn(4, 1)
    dls = DataLoaders.from_dsets(Dataset(x[:48], y[:48]), Dataset(x[48:], y[48:]), bs=8)
    yield Learner(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), dls, F.mse_loss, lr=0.01, cbs=[TrainCB()])
    plt.close('all')

def test_lr_finder_plot_is_labelled_and_clips_the_divergence(learn):
    learn.lr_find(gamma=2, start_lr=1e-4, max_epochs=40)
    assert unlabelled(plt.gcf()) == []
    cb = LRFinderCB()
    cb.lrs, cb.losses = [10**(k/4 - 5) for k in range(20)], [2.3]*12 + [2.2, 2.0, 1.6, 1.2, 1.0, 1.3, 2.9, 9.]
    ax = cb.plot()
    assert list(ax.lines[0].get_ydata()) == cb.losses[:-2], "the loss past where it started, at the end, is not plotted"
    assert ax.get_ylim()[1] < 2.9 and unlabelled(ax.figure) == [], "the y axis fits the useful range"
    assert len(cb.plot(clip=False).lines[0].get_ydata()) == 20

def test_recorder_hooks_init_and_inference_plots_are_labelled(learn):
    rec, stats = RecorderCB(lr=rec_lr, loss=rec_loss), ActivationStats(nn.ReLU)
    learn.fit(1, cbs=[rec, stats])
    for draw in (rec.plot, rec.plot_lr, rec.plot_loss, rec.plot_sched, stats.plot_stats, stats.color_dim, stats.dead_chart,
                 lambda: plot_func(torch.tanh), lambda: plot_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), ['a', 'b'])):
        plt.close('all')
        draw()
        assert unlabelled(plt.gcf()) == [], draw
