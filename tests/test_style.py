"""The code rules of CONTRIBUTING.md that a reader relies on: one binding per name, lines at most 120 characters.

One binding per name: every module-level name and every class attribute in `minitrain/` is bound exactly once, so
what a name means never depends on which binding ran last (a fast path is a second function picked by a dispatcher,
never a re-binding). Branches of one `if`/`try` are alternatives and count once; a property's `@x.setter` is part of
the property."""
import ast
from collections import Counter
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parent.parent/'minitrain'
MODULES = sorted(p for p in PKG.glob('*.py') if p.name != '_modidx.py')  # _modidx is nbdev's generated index
MAX_LINE = 120

def _names(target):
    "The plain names a binding target binds (`a`, `a, b`, `*a`)."
    if isinstance(target, ast.Name): yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for e in target.elts: yield from _names(e)
    elif isinstance(target, ast.Starred): yield from _names(target.value)

def _attrs(target):
    "The `(owner, attribute)` pairs a binding target binds on a named object (`Cls.a = ...`, `Cls.a, Cls.b = ...`)."
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name): yield target.value.id, target.attr
    elif isinstance(target, (ast.Tuple, ast.List)):
        for e in target.elts: yield from _attrs(e)

def _is_accessor(node):
    "Whether `node` is decorated `@x.setter`/`@x.deleter`: it adds to the property `x` rather than binding anew."
    return any(isinstance(d, ast.Attribute) and d.attr in ('setter', 'deleter') for d in node.decorator_list)

def _bindings(stmts, owner=None) -> Counter:
    "How often each name (or `(class, attribute)`) is bound by `stmts`, counting branches of one if/try once."
    c = Counter()
    def key(n): return n if owner is None else (owner, n)
    for s in stmts:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not (isinstance(s, ast.ClassDef) or not _is_accessor(s)): continue
            c[key(s.name)] += 1
            if isinstance(s, ast.ClassDef): c.update(_bindings(s.body, owner=s.name))
        elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target]):
                c.update(key(n) for n in _names(t))
                if owner is None: c.update(_attrs(t))
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            c.update({key((a.asname or a.name).split('.')[0]) for a in s.names if a.name != '*'})
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            c.update(key(n) for n in _names(s.target)); c.update(_bindings(s.body, owner))
        elif isinstance(s, (ast.With, ast.AsyncWith)): c.update(_bindings(s.body, owner))
        elif isinstance(s, ast.If): c.update(_bindings(s.body, owner) | _bindings(s.orelse, owner))
        elif isinstance(s, ast.Try):
            alts = [_bindings(s.body + s.orelse, owner), *(_bindings(h.body, owner) for h in s.handlers)]
            merged = Counter()
            for a in alts: merged |= a
            c.update(merged); c.update(_bindings(s.finalbody, owner))
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and getattr(s.value.func, 'id', None) == 'setattr':
            obj, nm = s.value.args[:2]
            if isinstance(obj, ast.Name) and isinstance(nm, ast.Constant): c[(obj.id, nm.value)] += 1
    return c

def _trees(): return {p.name: ast.parse(p.read_text()) for p in MODULES}

def bound_twice() -> list[str]:
    "Every name or class attribute bound more than once in `minitrain/`, with its module(s)."
    trees = _trees()
    classes = {s.name for t in trees.values() for s in t.body if isinstance(s, ast.ClassDef)}
    found, attrs = [], Counter()
    where = {}
    for mod, tree in trees.items():
        for k, n in _bindings(tree.body).items():
            if isinstance(k, tuple):
                if k[0] not in classes: continue
                attrs[k] += n; where.setdefault(k, []).append(mod)
            elif n > 1: found.append(f"{mod}: `{k}` is bound {n} times")
    found += [f"{', '.join(sorted(set(where[k])))}: `{k[0]}.{k[1]}` is bound {n} times" for k, n in attrs.items() if n > 1]
    return found

def test_checker_sees_rebinding():
    src = "class A:\n    def f(self): pass\nA.f = None\ndef g(): pass\ng = 1\nif x: h = 1\nelse: h = 2\n"
    c = _bindings(ast.parse(src).body)
    assert c[('A', 'f')] == 2 and c['g'] == 2 and c['h'] == 1

def test_one_binding_per_name():
    twice = bound_twice()
    assert not twice, "bound more than once (CONTRIBUTING.md, one binding per name):\n" + '\n'.join(twice)

@pytest.mark.parametrize('path', MODULES, ids=[p.name for p in MODULES])
def test_lines_at_most_120(path):
    long = [f"{path.name}:{i}: {len(l)} characters" for i, l in enumerate(path.read_text().splitlines(), 1)
            if len(l) > MAX_LINE and not l.startswith('__all__ = [')]  # nbdev writes `__all__`, wrapped its own way
    assert not long, f"lines over {MAX_LINE} characters (edit the notebook, then nbdev_export):\n" + '\n'.join(long)
