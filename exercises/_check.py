# %%
import importlib, linecache, os, sys, sysconfig
from contextlib import contextmanager

# %%
def _library(filename: str) -> bool:
    "Whether `filename` is code you did not write: Python's own, an installed package's, or minitrain's."
    dirs = {sysconfig.get_paths()[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')}
    if 'minitrain' in sys.modules: dirs.add(os.path.dirname(sys.modules['minitrain'].__file__))
    return filename.startswith('<frozen') or any(filename.startswith(d + os.sep) for d in dirs)

def your_line(tb) -> str:
    "Where the traceback `tb` last ran your code (a cell, or a function you wrote), with that line's source."
    frames = []
    while tb is not None: frames.append(tb); tb = tb.tb_next
    mine = [f for f in frames if not _library(f.tb_frame.f_code.co_filename)] or frames
    f = mine[-1]
    fn, line, func = f.tb_frame.f_code.co_filename, f.tb_lineno, f.tb_frame.f_code.co_name
    ip = sys.modules.get('IPython') and sys.modules['IPython'].get_ipython()
    n = getattr(getattr(ip, 'compile', None), '_filename_map', {}).get(fn)  # IPython's name for a cell: In[n]
    where = f"Cell In[{n}], line {line}" if n else f"{os.path.basename(fn)}, line {line}"
    src = linecache.getline(fn, line).strip()
    return where + ('' if func == '<module>' else f', in {func}') + (f': {src}' if src else '')

def import_missing(module: str):
    """`from module import *`, except for the names this notebook already has: the cells above keep their own
    `dls`, `train` or `Learner`, so any of them can run again after this section."""
    ns, m = sys._getframe(1).f_globals, importlib.import_module(module)
    for k in getattr(m, '__all__', [k for k in vars(m) if not k.startswith('_')]): ns.setdefault(k, getattr(m, k))

@contextmanager
def check(name, hints=None, using=None):
    """Run the asserts in the `with` block and say whether `name` works, without stopping the notebook.
    When your code raises, say which line of yours raised, and the `hints` whose key is in the error's text.
    `using` swaps in working versions of earlier exercises while it runs, so their mistakes are not blamed on `name`.
    The names the block binds are put back as they were after it, so a check never changes the notebook's names."""
    ns = sys._getframe(2).f_globals  # the check cell's namespace (this runs in `with`'s __enter__)
    saved = dict(ns)
    ns.update(using or {})
    try: yield
    except NotImplementedError: print(f"⏳ {name}: not written yet. Replace `raise NotImplementedError` above, run that cell, then this one.")
    except AssertionError as e: print(f"❌ {name} does not work yet: {e}")
    except Exception as e:
        msg = f'{type(e).__name__}: {e}'
        print(f"❌ {name} raised {msg}\n   at {your_line(e.__traceback__)}"
              + ''.join(f"\n   hint: {h}" for k, h in (hints or {}).items() if k in msg))
    else: print(f"✅ {name} works!")
    finally:
        for k in [k for k in ns if k not in saved]: del ns[k]
        ns.update(saved)
