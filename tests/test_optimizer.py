"""minitrain.optimizer: agreement with torch.optim, the vectorised path against the readable one, parameter
groups, state_dict round trips, PyTorch's tools (schedulers, GradScaler, hooks), user steppers, bad input."""
import copy, io, math, pickle, subprocess, sys, warnings
from functools import partial
import pytest
import torch
from torch import nn
from minitrain.optimizer import *
from minitrain.optimizer import _batches, _CPU_BATCH_BYTES

SHAPES = [(7, 5), (5,), (3, 4, 2), ()]

def make_params(seed=0, shapes=SHAPES):
    "Leaf tensors of `shapes` with random values."
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_() for s in shapes]

def clone(ps):
    "Independent copies of the tensors `ps`."
    return [p.detach().clone().requires_grad_() for p in ps]

def same_grads(runs, steps, seed=1, before_step=None):
    "Step each `(opt, params)` of `runs` `steps` times on the same random gradients; `before_step(i)` runs first."
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        grads = [torch.randn(p.shape, generator=g) for p in runs[0][1]]
        if before_step: before_step(i)
        for opt, ps in runs:
            for p, grad in zip(ps, grads): p.grad = grad.clone()  # clones: l2_reg changes p.grad in place
            opt.step()

def max_diff(a, b): return max((x - y).abs().max().item() for x, y in zip(a, b))

def equal(a, b): return all(torch.equal(x, y) for x, y in zip(a, b))

# ---------------------------------------------------------------- exactness against torch.optim
TORCH_CASES = {
    'sgd': (partial(SGD, lr=0.05), partial(torch.optim.SGD, lr=0.05)),
    'sgd momentum': (partial(SGD, lr=0.05, mom=0.9), partial(torch.optim.SGD, lr=0.05, momentum=0.9)),
    'sgd l2': (partial(SGD, lr=0.05, wd=0.1, decouple_wd=False), partial(torch.optim.SGD, lr=0.05, weight_decay=0.1)),
    'sgd momentum l2': (partial(SGD, lr=0.05, mom=0.8, wd=0.1, decouple_wd=False),
                        partial(torch.optim.SGD, lr=0.05, momentum=0.8, weight_decay=0.1)),
    'rmsprop': (partial(RMSProp, lr=1e-2, sqr_mom=0.9, eps=1e-6), partial(torch.optim.RMSprop, lr=1e-2, alpha=0.9, eps=1e-6)),
    'rmsprop defaults l2': (partial(RMSProp, lr=1e-2, wd=0.1, decouple_wd=False),
                            partial(torch.optim.RMSprop, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.1)),
    'adam l2': (partial(Adam, lr=1e-2, mom=0.8, sqr_mom=0.999, eps=1e-8, wd=0.1, decouple_wd=False),
                partial(torch.optim.Adam, lr=1e-2, betas=(0.8, 0.999), eps=1e-8, weight_decay=0.1)),
    'adam no wd': (partial(Adam, lr=1e-2, wd=0.), partial(torch.optim.Adam, lr=1e-2, betas=(0.9, 0.99), eps=1e-5)),
    'adamw': (partial(Adam, lr=1e-2, mom=0.9, sqr_mom=0.999, eps=1e-8, wd=0.1),
              partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    'adamw fastai defaults': (partial(Adam, lr=1e-3), partial(torch.optim.AdamW, lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)),
}

@pytest.mark.parametrize('torch_foreach', [False, True], ids=['torch loop', 'torch foreach'])
@pytest.mark.parametrize('foreach', [True, False], ids=['vectorised', 'readable'])
@pytest.mark.parametrize('case', TORCH_CASES)
def test_matches_torch_optim(case, foreach, torch_foreach):
    ours, theirs = TORCH_CASES[case]
    a = make_params()
    b, start = clone(a), clone(a)
    opt = ours(a)
    opt.foreach = foreach
    same_grads([(opt, a), (theirs(b, foreach=torch_foreach), b)], steps=300)
    assert max_diff(a, start) > 1e-2  # the weights did move
    assert max_diff(a, b) <= 1e-6

def test_hypers_are_read_at_every_step_sgd():
    "A scheduler changing `lr` and `mom` in `param_groups` is followed like torch follows `lr` and `momentum`."
    a = make_params()
    b = clone(a)
    oa, ob = SGD(a, lr=0.1, mom=0.9), torch.optim.SGD(b, lr=0.1, momentum=0.9)
    def schedule(i):
        lr, mom = 0.1 * (1 - i/100), 0.95 - 0.1 * math.sin(i/10)**2
        oa.param_groups[0].update(lr=lr, mom=mom)
        ob.param_groups[0].update(lr=lr, momentum=mom)
    same_grads([(oa, a), (ob, b)], steps=100, before_step=schedule)
    assert max_diff(a, b) <= 1e-6

@pytest.mark.parametrize('foreach', [True, False])
def test_hypers_are_read_at_every_step_adam(foreach):
    "One-cycle style annealing of `mom` and `sqr_mom` matches torch's Adam with the same `betas` at each step."
    a = make_params()
    b = clone(a)
    oa, ob = Adam(a, lr=1e-2, wd=0.), torch.optim.Adam(b, lr=1e-2, betas=(0.95, 0.99), eps=1e-5)
    oa.foreach = foreach
    def schedule(i):
        lr, mom, sqr_mom = 1e-2 * (1 + i) / 100, 0.95 - 0.1 * i / 100, 0.99 - 0.01 * i / 100
        oa.param_groups[0].update(lr=lr, mom=mom, sqr_mom=sqr_mom)
        ob.param_groups[0].update(lr=lr, betas=(mom, sqr_mom))
    same_grads([(oa, a), (ob, b)], steps=100, before_step=schedule)
    assert max_diff(a, b) <= 1e-6

# ---------------------------------------------------------------- vectorised path == readable path
FACTORIES = {'sgd': partial(SGD, lr=0.1), 'sgd momentum wd': partial(SGD, lr=0.1, mom=0.9, wd=0.01),
             'sgd momentum l2': partial(SGD, lr=0.1, mom=0.9, wd=0.01, decouple_wd=False),
             'rmsprop': partial(RMSProp, lr=1e-3), 'rmsprop momentum wd': partial(RMSProp, lr=1e-3, mom=0.9, wd=0.01),
             'adam': partial(Adam, lr=1e-3), 'adam l2': partial(Adam, lr=1e-3, decouple_wd=False)}

@pytest.mark.parametrize('name', FACTORIES)
def test_vectorised_equals_readable(name):
    "Bit for bit, with two groups, a group larger than a CPU batch, and parameters that skip steps or start late."
    shapes = [(600, 500), (7, 5), (5,), (300, 300), (3, 4, 2), (), (10,)]
    def run(foreach):
        ps = make_params(shapes=shapes)
        opt = FACTORIES[name]([ps[:4], ps[4:]])
        opt.param_groups[1]['lr'] /= 2
        opt.foreach = foreach
        g = torch.Generator().manual_seed(1)
        for i in range(12):
            for j, p in enumerate(ps):
                grad = torch.randn(p.shape, generator=g)
                p.grad = None if (j == 2 and i % 3 == 0) or (j == 6 and i < 5) else grad
            opt.step()
        return ps, opt
    (a, oa), (b, ob) = run(True), run(False)
    assert equal(a, b)
    for p, q in zip(a, b):
        sa, sb = oa.state[p], ob.state[q]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) if torch.is_tensor(sa[k]) else sa[k] == sb[k] for k in sa)
    if 'step' in oa.state[a[0]]:  # Adam counts steps per parameter
        assert (oa.state[a[0]]['step'], oa.state[a[2]]['step'], oa.state[a[6]]['step']) == (12, 8, 7)

def test_batches_group_by_state_and_fit_the_cpu_budget():
    "Parameters with the same state entries go together, in batches whose tensors fit in `_CPU_BATCH_BYTES`."
    n = _CPU_BATCH_BYTES // (3 * 4)  # float32 numbers that fit with their gradient and one state tensor
    big, small, small2, fresh = torch.zeros(n - 10), torch.zeros(10), torch.zeros(11), torch.zeros(5)
    state = {p: {'grad_avg': torch.zeros_like(p)} for p in (big, small, small2)}
    state[fresh] = {}
    ids = lambda batches: [[id(p) for p in b] for b in batches]
    assert ids(_batches(state, [big, fresh, small])) == [[id(big), id(small)], [id(fresh)]]
    assert ids(_batches(state, [big, small2, small])) == [[id(big)], [id(small2), id(small)]]

def test_vectorised_by_default_unless_a_stepper_has_no_vectorised_version():
    ps = make_params()
    assert SGD(ps, lr=0.1).foreach and Adam(ps, lr=0.1).foreach and RMSProp(ps, lr=0.1, mom=0.9).foreach
    def my_step(p, lr, **kwargs): p.sub_(lr * p.grad)
    assert not Optimizer(ps, [weight_decay, my_step], lr=0.1, wd=0.).foreach
    my_step.foreach = lambda ps, grads, lr, **kwargs: torch._foreach_add_(ps, grads, alpha=-lr)
    opt = Optimizer(ps, [my_step], lr=0.1)
    assert opt.foreach
    for p in ps: p.grad = torch.ones_like(p)
    before = clone(ps)
    opt.step()
    assert equal(ps, [p - 0.1 for p in before])

# ---------------------------------------------------------------- parameter groups
def test_list_of_lists_groups_match_torch_dict_groups():
    a = make_params()
    b = clone(a)
    oa = SGD([a[:2], a[2:]], lr=0.1, mom=0.9)
    oa.param_groups[1]['lr'] = 0.01
    ob = torch.optim.SGD([{'params': b[:2]}, {'params': b[2:], 'lr': 0.01}], lr=0.1, momentum=0.9)
    same_grads([(oa, a), (ob, b)], steps=50)
    assert [len(g['params']) for g in oa.param_groups] == [2, 2]
    assert max_diff(a, b) <= 1e-6

@pytest.mark.parametrize('foreach', [True, False])
def test_torch_style_dict_groups_with_their_own_hypers(foreach):
    a = make_params()
    b = clone(a)
    oa = Adam([{'params': a[:2]}, {'params': a[2:], 'lr': 0.1, 'wd': 0.}], lr=1e-3)
    oa.foreach = foreach
    ob = torch.optim.AdamW([{'params': b[:2]}, {'params': b[2:], 'lr': 0.1, 'weight_decay': 0.}],
                           lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    assert oa.param_groups[1]['lr'] == 0.1 and oa.param_groups[0]['lr'] == 1e-3 and oa.param_groups[1]['mom'] == 0.9
    same_grads([(oa, a), (ob, b)], steps=50)
    assert max_diff(a, b) <= 1e-6

def test_params_from_a_generator():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = SGD(model.parameters(), lr=0.1)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]['params']) == 4

def test_params_without_grad_are_skipped():
    a = make_params()
    opt = Adam(a, lr=0.1)
    a[0].grad = torch.ones_like(a[0])
    before = clone(a)
    opt.step()
    assert not torch.equal(a[0], before[0]) and equal(a[1:], before[1:])
    assert list(opt.state) == [a[0]]

# ---------------------------------------------------------------- state_dict, checkpoint and resume
RESUME = {'sgd momentum': partial(SGD, lr=0.1, mom=0.9, wd=0.01), 'rmsprop': partial(RMSProp, lr=1e-2, mom=0.5),
          'adam': partial(Adam, lr=1e-2), 'adam l2': partial(Adam, lr=1e-2, decouple_wd=False)}

@pytest.mark.parametrize('foreach', [True, False])
@pytest.mark.parametrize('name', RESUME)
def test_resume_from_checkpoint_continues_exactly(name, foreach):
    "Save after 20 steps with torch.save, load into a fresh optimizer: the next 20 steps equal an uninterrupted run."
    make = RESUME[name]
    g = torch.Generator().manual_seed(3)
    grads = [[torch.randn(s, generator=g) for s in SHAPES] for _ in range(40)]
    def steps(opt, ps, gs):
        for step_grads in gs:
            for p, grad in zip(ps, step_grads): p.grad = grad.clone()
            opt.step()
    a = make_params()
    opt = make([a[:1], a[1:]])
    opt.foreach = foreach
    opt.param_groups[1]['lr'] /= 4  # as a scheduler would; the checkpoint must keep it
    steps(opt, a, grads[:20])
    buf = io.BytesIO()
    torch.save({'params': [p.detach() for p in a], 'opt': opt.state_dict()}, buf)
    steps(opt, a, grads[20:])

    buf.seek(0)
    ckpt = torch.load(buf)  # weights_only: the state dict holds only tensors, numbers, lists and dicts
    b = [p.clone().requires_grad_() for p in ckpt['params']]
    opt2 = make([b[:1], b[1:]])
    opt2.foreach = foreach
    opt2.load_state_dict(ckpt['opt'])
    assert opt2.param_groups[1]['lr'] == opt.param_groups[1]['lr']
    steps(opt2, b, grads[20:])
    assert equal(a, b)

def test_state_dict_contents():
    a = make_params()
    opt = Adam(a, lr=1e-3)
    for p in a: p.grad = torch.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    assert sd['param_shapes'] == [list(s) for s in SHAPES]
    assert sd['param_groups'][0]['lr'] == 1e-3 and sd['param_groups'][0]['params'] == [0, 1, 2, 3]
    assert sd['state'][0]['step'] == 1 and set(sd['state'][0]) == {'grad_avg', 'sqr_avg', 'step'}

def test_loaded_state_is_not_shared_with_the_source():
    a = make_params()
    opt = SGD(a, lr=0.1, mom=0.9)
    for p in a: p.grad = torch.ones_like(p)
    opt.step()
    saved = opt.state[a[0]]['grad_avg'].clone()
    opt2 = SGD(clone(a), lr=0.1, mom=0.9)
    opt2.load_state_dict(opt.state_dict())
    for p in opt2.param_groups[0]['params']: p.grad = torch.ones_like(p)
    opt2.step()
    assert torch.equal(opt.state[a[0]]['grad_avg'], saved)

def test_copy_and_pickle_keep_the_steppers():
    a = make_params()
    opt = Adam(a, lr=1e-3)
    for p in a: p.grad = torch.ones_like(p)
    opt.step()
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert [getattr(cb, 'func', cb) for cb in other.cbs] == [getattr(cb, 'func', cb) for cb in opt.cbs]
        assert other.foreach == opt.foreach
        for p in other.param_groups[0]['params']: p.grad = torch.ones_like(p)
        other.step()
        assert all(s['step'] == 2 for s in other.state.values())

# ---------------------------------------------------------------- working with PyTorch's tools
def test_is_a_torch_optimizer_and_zero_grad():
    a = make_params()
    opt = SGD(a, lr=0.1)
    assert isinstance(opt, torch.optim.Optimizer)
    for p in a: p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in a)
    opt.zero_grad()
    assert all(p.grad is None for p in a)

def test_zero_grad_to_zeros_detaches_a_grad_with_history():
    w = torch.ones(2, requires_grad=True)
    (w**2).sum().backward(create_graph=True)  # w.grad now has a grad_fn
    opt = SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert w.grad.grad_fn is None and not w.grad.requires_grad and torch.equal(w.grad, torch.zeros(2))

def test_training_never_imports_the_compiler():
    "torch's wrapped base-class methods import torch._dynamo (about a second) on first use; ours are not wrapped."
    code = ("import sys, torch; from minitrain.optimizer import Adam; w = torch.ones(3, requires_grad=True); "
            "opt = Adam([{'params': [w]}], lr=0.1); opt.add_param_group({'params': [torch.ones(1, requires_grad=True)]}); "
            "(w**2).sum().backward(); opt.step(); opt.zero_grad(); opt.load_state_dict(opt.state_dict()); "
            "assert 'torch._dynamo' not in sys.modules, 'the optimizer imported torch._dynamo'")
    subprocess.run([sys.executable, '-c', code], check=True)

@pytest.mark.parametrize('make_sched', [partial(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5),
                                        partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=lambda i: 1 / (1 + i))],
                         ids=['StepLR', 'LambdaLR'])
def test_torch_lr_schedulers(make_sched):
    a = make_params()
    b = clone(a)
    oa, ob = SGD(a, lr=0.1, mom=0.9), torch.optim.SGD(b, lr=0.1, momentum=0.9)
    sa, sb = make_sched(oa), make_sched(ob)
    def sched(i):
        if i: sa.step(); sb.step()
    same_grads([(oa, a), (ob, b)], steps=20, before_step=sched)
    assert oa.param_groups[0]['lr'] == ob.param_groups[0]['lr'] < 0.1
    assert max_diff(a, b) <= 1e-6

def test_grad_scaler_unscales_and_skips_overflowing_steps():
    a = make_params()
    b = clone(a)
    opt, ref = Adam(a, lr=1e-2), Adam(b, lr=1e-2)
    scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)
    loss = lambda ps: sum((p * (i + 1)).sum() for i, p in enumerate(ps))
    scaler.scale(loss(a)).backward()
    scaler.unscale_(opt)
    assert torch.equal(a[1].grad, torch.full((5,), 2.))  # unscaled before the step, e.g. for clipping
    scaler.step(opt)
    scaler.update()
    loss(b).backward()
    ref.step()
    assert equal(a, b)
    opt.zero_grad()
    before = clone(a)
    scaler.scale(loss(a) * float('inf')).backward()
    scaler.step(opt)
    scaler.update()
    assert equal(a, before) and scaler.get_scale() < 2.**10

def test_step_hooks_and_closure():
    a = make_params()
    opt = SGD(a, lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append('pre'))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append('post'))
    def closure():
        opt.zero_grad()
        loss = sum((p**2).sum() for p in a)
        loss.backward()
        return loss
    before = clone(a)
    loss = opt.step(closure)
    assert calls == ['pre', 'post']
    assert torch.isclose(loss, sum((p**2).sum() for p in before))
    assert max_diff(a, [p * 0.8 for p in before]) < 1e-6  # p - 0.1 * 2p

def test_import_does_not_pull_in_later_stages():
    code = ("import sys, minitrain.optimizer; "
            "late = [m for m in sys.modules if m.startswith(('minitrain.learner', 'minitrain.data', 'minitrain.schedule'))]; "
            "assert not late, late")
    subprocess.run([sys.executable, '-c', code], check=True)

# ---------------------------------------------------------------- steppers written by users, as in the book
def sgd_cb(p, lr, **kwargs): p.data.add_(p.grad.data, alpha=-lr)

def test_user_stepper_as_opt_func():
    "`partial(Optimizer, cbs=[...])` called as the Learner does, `opt_func(params, lr=lr)`, with a generator."
    model = nn.Linear(4, 3)
    ref = copy.deepcopy(model)
    opt_func = partial(Optimizer, cbs=[sgd_cb])
    opt = opt_func(model.parameters(), lr=0.1)
    assert not opt.foreach
    for m, o in ((model, opt), (ref, torch.optim.SGD(ref.parameters(), lr=0.1))):
        for _ in range(5):
            m(torch.ones(2, 4)).pow(2).sum().backward()
            o.step(); o.zero_grad()
    assert equal(model.parameters(), ref.parameters())

def test_book_steppers_verbatim():
    "The book's steppers, including the old `add_(-lr, tensor)` call form, give torch's numbers."
    def sgd_cb_book(p, lr, **kwargs): p.data.add_(-lr, p.grad.data)
    def average_grad_book(p, mom, grad_avg=None, **kwargs):
        if grad_avg is None: grad_avg = torch.zeros_like(p.grad.data)
        return {'grad_avg': grad_avg*mom + p.grad.data}
    def momentum_step_book(p, lr, grad_avg, **kwargs): p.data.add_(-lr, grad_avg)
    for cbs, hypers, theirs in [([sgd_cb_book], {}, partial(torch.optim.SGD, lr=0.03)),
                                ([average_grad_book, momentum_step_book], {'mom': 0.9}, partial(torch.optim.SGD, lr=0.03, momentum=0.9)),
                                ([average_sqr_grad, rms_prop_step], {'sqr_mom': 0.99, 'eps': 1e-7},
                                 partial(torch.optim.RMSprop, lr=0.03, alpha=0.99, eps=1e-7))]:
        a = make_params()
        b = clone(a)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the deprecated add_ form
            same_grads([(partial(Optimizer, cbs=cbs, **hypers)(a, lr=0.03), a), (theirs(b), b)], steps=50)
        assert max_diff(a, b) <= 1e-6

def test_user_stepper_state_and_non_dict_results():
    "A returned dict is the parameter's new state, seen by later steppers and the next step; other results are ignored."
    seen = []
    def count(p, n=0, **kwargs): return {'n': n + 1}
    def look(p, n, **kwargs):
        seen.append(n)
        return p  # like fastai's adam_step: not a dict, ignored
    a = make_params(shapes=[(2,)])
    opt = Optimizer(a, [count, look])
    for _ in range(3):
        a[0].grad = torch.ones(2)
        opt.step()
    assert seen == [1, 2, 3] and opt.state[a[0]] == {'n': 3}

def test_repr():
    a = make_params()
    opt = Adam([a[:1], a[1:]], lr=1e-3)
    r = repr(opt)
    assert r.startswith('Optimizer([weight_decay, average_grad(dampening=True), average_sqr_grad, step_stat, adam_step], foreach=True)')
    assert 'group 1: 3 tensors, 30 numbers; lr=0.001, mom=0.9, sqr_mom=0.99, eps=1e-05, wd=0.01' in r

# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize('params', [[], iter([]), [[], []], [{'params': []}]], ids=['list', 'generator', 'groups', 'dicts'])
def test_no_parameters(params):
    with pytest.raises(ValueError, match='no parameters'): SGD(params, lr=0.1)

def test_used_up_generator():
    model = nn.Linear(2, 2)
    params = model.parameters()
    SGD(params, lr=0.1)
    with pytest.raises(ValueError, match='used up'): SGD(params, lr=0.1)

def test_model_or_tensor_instead_of_parameters():
    with pytest.raises(TypeError, match=r'model.parameters\(\)'): SGD(nn.Linear(2, 2), lr=0.1)
    with pytest.raises(TypeError, match='single tensor'): SGD(torch.zeros(3, requires_grad=True), lr=0.1)

@pytest.mark.parametrize('lr', [-0.1, float('nan'), float('inf'), None, 'fast'])
def test_bad_lr(lr):
    with pytest.raises(ValueError, match='lr='): Adam(make_params(), lr=lr)

@pytest.mark.parametrize('hypers', [{'mom': 1.5}, {'mom': -0.1}, {'sqr_mom': 1.}, {'eps': -1e-8}, {'wd': float('nan')}])
def test_bad_hypers(hypers):
    name = next(iter(hypers))
    with pytest.raises(ValueError, match=f'{name}='): Adam(make_params(), lr=1e-3, **hypers)

@pytest.mark.parametrize('foreach', [True, False])
def test_bad_lr_set_later_is_refused_before_any_change(foreach):
    a = make_params()
    opt = SGD([a[:2], a[2:]], lr=0.1, mom=0.9)
    opt.foreach = foreach
    for p in a: p.grad = torch.ones_like(p)
    opt.param_groups[1]['lr'] = float('nan')
    before = clone(a)
    with pytest.raises(ValueError, match='lr=nan in parameter group 1'): opt.step()
    assert equal(a, before) and not opt.state

def test_bad_hypers_in_a_group_added_later():
    a = make_params()
    opt = SGD(a[:2], lr=0.1)
    with pytest.raises(ValueError, match='lr=-1'): opt.add_param_group({'params': a[2:], 'lr': -1})
    assert len(opt.param_groups) == 1

def test_missing_hyper_names_stepper_and_hyper():
    ps = make_params()
    with pytest.raises(TypeError, match='`average_grad` needs the hyper-parameter `mom`'):
        Optimizer(ps, [average_grad, momentum_step], lr=0.1)
    with pytest.raises(TypeError, match='`sgd_step` needs the hyper-parameter `lr`'):
        Optimizer(ps, [sgd_step])
    with pytest.raises(TypeError, match=r'`average_grad\(dampening=True\)` needs the hyper-parameter `mom`'):
        Optimizer(ps, [partial(average_grad, dampening=True)], lr=0.1)

@pytest.mark.parametrize('foreach', [True, False])
def test_missing_state_names_stepper_and_entry(foreach):
    ps = make_params()
    opt = Optimizer(ps, [momentum_step], foreach=foreach, lr=0.1)
    for p in ps: p.grad = torch.ones_like(p)
    before = clone(ps)
    with pytest.raises(TypeError, match='`momentum_step` needs `grad_avg`'): opt.step()
    assert equal(ps, before)

def test_user_hyper_missing_at_step():
    def my_step(p, lr, beta, **kwargs): p.sub_(lr * beta * p.grad)
    a = make_params()
    opt = Optimizer(a, [my_step], lr=0.1)
    for p in a: p.grad = torch.ones_like(p)
    with pytest.raises(TypeError, match='`my_step` needs `beta`'): opt.step()
    opt.param_groups[0]['beta'] = 2.
    opt.step()

def test_bad_steppers():
    ps = make_params()
    def no_kwargs(p, lr): p.sub_(lr * p.grad)
    with pytest.raises(TypeError, match=r'`no_kwargs` must take `\*\*kwargs`'): Optimizer(ps, [no_kwargs], lr=0.1)
    with pytest.raises(TypeError, match='must be a function'): Optimizer(ps, ['sgd_step'], lr=0.1)
    with pytest.raises(ValueError, match='at least one stepper'): Optimizer(ps, [], lr=0.1)
    with pytest.raises(ValueError, match='these have none: sgd_cb'): Optimizer(ps, [sgd_cb], foreach=True, lr=0.1)
    assert Optimizer(ps, sgd_step, lr=0.1).cbs == [sgd_step]  # one stepper alone is fine

def test_load_state_dict_from_a_different_model():
    def trained(model):
        opt = Adam(model.parameters(), lr=1e-3)
        model(torch.ones(1, 4)).sum().backward()
        opt.step()
        return opt
    sd = trained(nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))).state_dict()
    with pytest.raises(ValueError, match=r'parameter 0 has shape \[6, 4\] here but \[5, 4\]'):
        trained(nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2))).load_state_dict(sd)
    with pytest.raises(ValueError, match=r'hold \[4\] tensors, this optimizer\'s \[2\]'):
        trained(nn.Sequential(nn.Linear(4, 2))).load_state_dict(sd)
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
    with pytest.raises(TypeError, match="model's state dict"):
        trained(model).load_state_dict(model.state_dict())

# --- the fused Adam path (torch's kernel in place of Adam's steppers)

def rel_diff(a: list, b: list) -> float:
    "Largest difference between the tensors of `a` and `b`, over the largest magnitude in `b`."
    fa, fb = torch.cat([t.detach().flatten() for t in a]), torch.cat([t.detach().flatten() for t in b])
    return ((fa - fb).abs().max() / fb.abs().max()).item()

@pytest.mark.parametrize('decouple_wd', [True, False])
@pytest.mark.parametrize('wd', [0., 0.1])
def test_fused_adam_matches_readable_300_steps(decouple_wd, wd):
    ps = make_params()
    runs = [(Adam(q, lr=1e-2, wd=wd, decouple_wd=decouple_wd, fused=fused), q) for fused, q in ((True, clone(ps)), (False, clone(ps)))]
    runs[1][0].foreach = False
    same_grads(runs, 300)
    assert rel_diff(runs[0][1], runs[1][1]) < 1e-6
    sa, sb = runs[0][0].state, runs[1][0].state
    for pa, pb in zip(runs[0][1], runs[1][1]):
        assert sa[pa]['step'] == sb[pb]['step'] == 300
        assert rel_diff([sa[pa]['sqr_avg']], [sb[pb]['sqr_avg']]) < 1e-5

def test_fused_adam_follows_hypers_groups_and_switching():
    "Two groups with their own lr, a scheduler changing lr, and a switch from the readable path to the fused one halfway."
    ps = make_params()
    a, b = clone(ps), clone(ps)
    oa = Adam([{'params': a[:2]}, {'params': a[2:], 'lr': 3e-3}], lr=1e-2)
    ob = Adam([{'params': b[:2]}, {'params': b[2:], 'lr': 3e-3}], lr=1e-2)
    ob.foreach = False
    def before(i):
        if i == 50: oa.fused = True
        for o in (oa, ob): o.param_groups[0]['lr'] = 1e-2 * (1 - i/200)
    same_grads([(oa, a), (ob, b)], 100, before_step=before)
    assert oa.fused and rel_diff(a, b) < 1e-6

def test_fused_adam_is_deterministic_and_round_trips():
    ps = make_params()
    runs = [(Adam(q, lr=1e-2, fused=True), q) for q in (clone(ps), clone(ps))]
    same_grads(runs, 20)
    assert all(torch.equal(x, y) for x, y in zip(runs[0][1], runs[1][1]))
    opt = runs[0][0]
    assert copy.deepcopy(opt).fused and pickle.loads(pickle.dumps(opt)).fused
    other = Adam(clone(ps), lr=1e-2)
    other.load_state_dict(opt.state_dict())  # the fused path keeps the readable path's state entries
    assert all(s['step'] == 20 for s in other.state.values())
    assert 'fused=True' in repr(opt)

def test_fused_skips_params_without_grad():
    ps = make_params()
    opt = Adam(ps, lr=1e-2, fused=True)
    before = ps[1].detach().clone()
    for p in ps: p.grad = torch.ones_like(p)
    ps[1].grad = None
    opt.step()
    assert torch.equal(ps[1], before) and ps[1] not in opt.state and opt.state[ps[0]]['step'] == 1

@pytest.mark.parametrize('cbs', [[sgd_step], [weight_decay, average_grad, average_sqr_grad, step_stat, adam_step],
                                 [partial(average_grad, dampening=True), average_sqr_grad, step_stat, adam_step]])
def test_fused_refuses_other_steppers(cbs):
    with pytest.raises(ValueError, match="fused=True"): Optimizer(make_params(), cbs, lr=0.1, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0., fused=True)
    opt = Optimizer(make_params(), cbs, lr=0.1, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.)
    with pytest.raises(ValueError, match="fused kernel only does Adam's|average_grad, dampening=True"): opt.fused = True
    assert not opt.fused

# ---------------------------------------------------------------- Coming from other texts: OptimWrapper, delegates
@delegates(torch.optim.AdamW.__init__)
def pytorch_adamw(param_groups, **kwargs):  # fastai's Imagenette tutorial, as written
    return OptimWrapper(torch.optim.AdamW([{'params': ps, **kwargs} for ps in param_groups]))

def hypers(pg): return {k: v for k, v in pg.items() if k != 'params'}

def test_optim_wrapper_returns_the_torch_optimizer_with_torchs_names():
    ps = make_params()
    opt = torch.optim.AdamW([{'params': ps[:2], 'wd': 0.1, 'mom': 0.8, 'sqr_mom': 0.95, 'eps': 1e-3}, {'params': ps[2:]}])
    assert OptimWrapper(opt) is opt and type(opt) is torch.optim.AdamW
    g0, g1 = opt.param_groups
    assert g0['weight_decay'] == 0.1 and g0['betas'] == (0.8, 0.95) and g0['eps'] == 1e-3
    assert not {'wd', 'mom', 'sqr_mom'} & g0.keys()
    assert g1['weight_decay'] == 0.01 and g1['betas'] == (0.9, 0.999)  # torch's defaults, untouched
    sgd = OptimWrapper(torch.optim.SGD([{'params': ps, 'mom': 0.9, 'wd': 1e-4}], lr=0.1))
    assert sgd.param_groups[0]['momentum'] == 0.9 and sgd.param_groups[0]['weight_decay'] == 1e-4
    rms = OptimWrapper(torch.optim.RMSprop([{'params': ps, 'sqr_mom': 0.9, 'mom': 0.5}], lr=0.1))
    assert rms.param_groups[0]['alpha'] == 0.9 and rms.param_groups[0]['momentum'] == 0.5
    ours = SGD(ps, lr=0.1, mom=0.9)
    assert OptimWrapper(ours) is ours and hypers(ours.param_groups[0]) == {'lr': 0.1, 'mom': 0.9, 'wd': 0.}
    assert torch_key(g0, 'mom') == ('betas', 0) and torch_key(g0, 'wd') == 'weight_decay' and torch_key(g0, 'x') is None

def test_optim_wrapper_mistakes():
    ps = make_params()
    with pytest.raises(TypeError, match=r"fastai's `mom`, but Adagrad has no such hyper.*leave it out"):
        OptimWrapper(torch.optim.Adagrad([{'params': ps, 'mom': 0.9}]))
    with pytest.raises(ValueError, match=r"wd=-1 in parameter group 0"):
        OptimWrapper(torch.optim.AdamW([{'params': ps, 'wd': -1}]))
    with pytest.raises(TypeError, match=r"OptimWrapper wraps a torch optimizer, built.*opt_func=torch.optim.AdamW"):
        OptimWrapper(torch.optim.AdamW)

@pytest.mark.parametrize('wd', [0.01, 0.1])
def test_text_pytorch_adamw_steps_as_adamw_with_its_weight_decay(wd):
    ps = make_params()
    ours = partial(pytorch_adamw, wd=wd, eps=1e-3)(iter(clone(ps)), lr=1e-2)  # as the Learner calls it
    assert len(ours.param_groups) == len(SHAPES)  # one group per tensor, each with the lr asked for
    assert all(pg['weight_decay'] == wd and pg['eps'] == 1e-3 and pg['lr'] == 1e-2 for pg in ours.param_groups)
    a, b = clone(ps), clone(ps)
    runs = [(partial(pytorch_adamw, wd=wd, eps=1e-3)(a, lr=1e-2), a),
            (torch.optim.AdamW(b, lr=1e-2, weight_decay=wd, eps=1e-3), b)]
    same_grads(runs, 10)
    assert equal(a, b)
    c = clone(ps)  # and the decay did something: without it the weights end elsewhere
    run = [(torch.optim.AdamW(c, lr=1e-2, weight_decay=0., eps=1e-3), c)]
    same_grads(run, 10)
    assert not equal(a, c)

def test_optim_wrapper_state_dict_round_trip():
    ps = make_params()
    opt = partial(pytorch_adamw, wd=0.1)(ps, lr=1e-2)
    same_grads([(opt, ps)], 3)
    sd = copy.deepcopy(opt.state_dict())
    q = clone(ps)
    opt2 = partial(pytorch_adamw, wd=0.1)(q, lr=1e-2)
    opt2.load_state_dict(sd)
    same_grads([(opt, ps), (opt2, q)], 3)
    assert equal(ps, q) and opt2.param_groups[0]['weight_decay'] == 0.1

def test_delegates_lists_the_keywords_of_its_target():
    import inspect
    sig = inspect.signature(pytorch_adamw).parameters
    assert list(sig)[0] == 'param_groups' and {'lr', 'weight_decay', 'eps', 'betas'} <= sig.keys() and 'kwargs' not in sig
    assert sig['eps'].default == 1e-8 and sig['eps'].kind is inspect.Parameter.KEYWORD_ONLY
    @delegates(torch.optim.SGD.__init__, keep=True)
    def f(params, lr=0.5, **kwargs): return lr, kwargs
    sig = inspect.signature(f).parameters
    assert sig['lr'].default == 0.5 and 'momentum' in sig and 'kwargs' in sig and f(None, x=1) == (0.5, {'x': 1})
    def g(a): return a
    assert delegates(torch.optim.SGD.__init__)(g) is g and list(inspect.signature(g).parameters) == ['a']  # no **kwargs
