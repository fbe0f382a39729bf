"""Keyframe schedules (Deforum's syntax): a setting's value as a function of the frame index.

::

    "0:(1.0), 30:(1.05), 90:(1.02+0.02*sin(2*pi*t/24))"

A schedule is comma-separated ``FRAME:(VALUE)`` keys. A key whose value is a number is joined
linearly to the next key (to a following expression key: to that expression's value at its own
frame); a key whose value is an expression is evaluated at every frame from its frame up to the
next key. Before the first key the first key is in force (held, or evaluated for an expression:
a schedule needs no key at frame 0), after the last key the last one (held, or evaluated). Keys
may come in any order; a frame given twice is an error. A text without keys is one value for
every frame: ``"1.04"`` (a constant) or ``"1.02 + 0.01*beat"`` (an expression). Whitespace is free
and a trailing comma is allowed.

Expressions: numbers, ``+ - * / // % **``, unary ``-``/``+``, parentheses, calls by plain name of
:data:`FUNCTIONS` and the names of :data:`NAMES`:

=========  ================================================================================
``t``      the frame index (absolute: in the input video, or in the loop)
``T``      frames in the render; ``fps`` its frame rate; ``s`` the seed
``a``      the sound's loudness at frame t, 0..1, smoothed (io.audio.frame_envelope)
``beat``   1 at a detected onset, halving every 0.1 s after it
``pi``     also ``e`` and ``tau``
=========  ================================================================================

Evaluation is safe: the text is parsed with ``ast.parse(mode="eval")``, every node is checked
against a whitelist and compiled into plain Python closures over floats (nothing is ever passed to
``eval``/``exec``); attributes, subscripts, strings, lambdas, comprehensions, unknown names and
functions are refused with the character position. All arithmetic is on floats (``**`` is
``math.pow``), so a huge power overflows at once instead of building a giant integer; parts of an
expression without names are computed when the schedule is parsed, so ``9**9**9`` is refused
there. Errors are :class:`~dreamvid.errors.SettingError` (field, text, reason) whose reason
reads ``FIELD: at character N: what was expected`` (N counted from 1; FIELD is the front end's
name for the field, ``--zoom`` in the CLI); a math error while a frame is computed (division by
zero, overflow, a square root of a negative number) is a SettingError naming the field and the
frame: ``--step: division by zero (at frame 12)``.
"""

from __future__ import annotations

import ast
import bisect
import math
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from ..errors import DreamvidError, SettingError

#: Variables an expression may use (see the module doc), and the constants.
VARIABLES = ("t", "T", "fps", "s", "a", "beat")
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
NAMES = VARIABLES + tuple(CONSTANTS)
AUDIO_NAMES = frozenset({"a", "beat"})
#: Longest schedule text accepted (a guard on parse time and recursion, far above real use).
MAX_LENGTH = 10_000


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def _float_fn(fn: Callable) -> Callable[..., float]:
    return lambda *args: float(fn(*args))


#: Functions an expression may call: name -> (function, fewest arguments, most arguments or None).
FUNCTIONS: Dict[str, Tuple[Callable[..., float], int, Optional[int]]] = {
    **{n: (getattr(math, n), 1, 1) for n in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh",
                                             "cosh", "tanh", "exp", "sqrt", "log2", "log10",
                                             "degrees", "radians")},
    "log": (math.log, 1, 2),            # log(x) or log(x, base)
    "atan2": (math.atan2, 2, 2),
    "hypot": (math.hypot, 2, 2),
    "fmod": (math.fmod, 2, 2),
    "pow": (math.pow, 2, 2),
    "abs": (_float_fn(abs), 1, 1),
    "floor": (_float_fn(math.floor), 1, 1),
    "ceil": (_float_fn(math.ceil), 1, 1),
    "round": (_float_fn(round), 1, 1),  # half to even, like Python
    "min": (_float_fn(min), 2, None),
    "max": (_float_fn(max), 2, None),
    "clamp": (_clamp, 3, 3),            # clamp(x, lo, hi)
}

_BINARY = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
    ast.Div: lambda x, y: x / y,
    ast.FloorDiv: lambda x, y: float(x // y),
    ast.Mod: lambda x, y: x % y,
    ast.Pow: math.pow,  # floats only: overflows at once, never a complex number
}
_UNARY = {ast.USub: lambda x: -x, ast.UAdd: lambda x: x}

# What a refused node is called in the message.
_REFUSED = {
    ast.Attribute: "attribute access ('.')", ast.Subscript: "indexing ('[...]')",
    ast.Lambda: "'lambda'", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.List: "a list",
    ast.Tuple: "a tuple", ast.Set: "a set", ast.Dict: "a dict", ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'", ast.IfExp: "'if ... else'", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.JoinedStr: "a string", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield'", ast.Slice: "a slice",
}

Env = Dict[str, float]


class _MathError(Exception):
    """A math error in a constant part of an expression, at parse time."""


def _math(fn: Callable[[], float]) -> float:
    try:
        v = fn()
    except ZeroDivisionError:
        raise DreamvidError("division by zero") from None
    except OverflowError:
        raise DreamvidError("overflows (the value is too large)") from None
    except ValueError:
        raise DreamvidError("math domain error (e.g. a square root or log of a negative number)") from None
    except TypeError as e:  # cannot happen with floats only; kept as a one-line error
        raise DreamvidError(f"could not be computed ({e})") from None
    if isinstance(v, complex):
        raise DreamvidError("is not a real number")
    return v


@dataclass(frozen=True)
class _Expr:
    """A compiled expression: ``fn(env) -> float``; ``const`` when it uses no variable."""

    fn: Callable[[Env], float]
    names: FrozenSet[str]
    const: Optional[float]
    text: str


class _Compiler:
    """Whitelisted AST -> closures. `base` is the expression's offset in the schedule text."""

    def __init__(self, field: str, schedule: str, expr: str, base: int):
        self.field, self.schedule, self.expr, self.base = field, schedule, expr, base
        self.wrapped = "(" + expr + ")"

    def error(self, node: Optional[ast.AST], reason: str) -> SettingError:
        """`reason` at `node`'s place (None: the end of the expression)."""
        if node is None:
            return _error(self.field, self.schedule, self.base + len(self.expr.rstrip()), reason)
        return self.error_at(node.lineno, node.col_offset, reason, byte_col=True)

    def error_at(self, lineno: int, col: int, reason: str, byte_col: bool) -> SettingError:
        # The expression is parsed as "(" + expr + ")" (newlines inside are fine), so line 1 has one
        # character more; ast columns count UTF-8 bytes, SyntaxError columns characters.
        lines = self.wrapped.split("\n")
        lineno = min(max(lineno, 1), len(lines))
        line = lines[lineno - 1]
        if byte_col:
            col = len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))
        pos = sum(len(ln) + 1 for ln in lines[:lineno - 1]) + min(col, len(line)) - 1
        pos = min(max(pos, 0), len(self.expr))
        return _error(self.field, self.schedule, self.base + pos, reason)

    def compile(self) -> _Expr:
        if not self.expr.strip():
            raise self.error(None, "expected a value")
        self.wrapped = "(" + self.expr + ")"
        try:
            tree = ast.parse(self.wrapped, mode="eval")
        except SyntaxError as e:
            msg = e.msg or "invalid syntax"
            msg = "unclosed '('" if "never closed" in msg else msg
            shown = " ".join(self.expr.split())
            where = f" in '{shown if len(shown) <= 40 else shown[:37] + '...'}'"
            if not e.offset or not e.lineno:
                raise self.error(None, msg + where) from None
            raise self.error_at(e.lineno, e.offset - 1, msg + where, byte_col=False) from None
        except ValueError as e:  # e.g. an integer literal with thousands of digits
            raise _error(self.field, self.schedule, self.base, f"cannot be read ({e})") from None
        except (RecursionError, MemoryError):
            raise _error(self.field, self.schedule, self.base, "expression too deeply nested") from None
        try:
            fn, names, const = self.node(tree.body)
        except RecursionError:
            raise _error(self.field, self.schedule, self.base, "expression too deeply nested") from None
        return _Expr(fn, names, const, self.expr.strip())

    def node(self, n: ast.AST):
        """-> (fn(env) -> float, names used, constant value or None)."""
        if isinstance(n, ast.Constant):
            if isinstance(n.value, bool) or not isinstance(n.value, (int, float)):
                what = "a string" if isinstance(n.value, (str, bytes)) else f"'{n.value!r}'"
                raise self.error(n, f"{what} is not allowed: only numbers")
            try:
                v = float(n.value)
            except OverflowError:
                raise self.error(n, "number too large") from None
            return (lambda env, v=v: v), frozenset(), v
        if isinstance(n, ast.Name):
            if n.id in CONSTANTS:
                v = CONSTANTS[n.id]
                return (lambda env, v=v: v), frozenset(), v
            if n.id in VARIABLES:
                name = n.id
                return (lambda env: env[name]), frozenset({name}), None
            raise self.error(n, f"unknown name '{n.id}': use {', '.join(NAMES)}")
        if isinstance(n, ast.BinOp) and type(n.op) in _BINARY:
            op = _BINARY[type(n.op)]
            (lf, ln, lc), (rf, rn, rc) = self.node(n.left), self.node(n.right)
            fn = lambda env: op(lf(env), rf(env))  # noqa: E731
            return self.fold(fn, ln | rn, n, lc is not None and rc is not None)
        if isinstance(n, ast.UnaryOp) and type(n.op) in _UNARY:
            op = _UNARY[type(n.op)]
            f, names, c = self.node(n.operand)
            return self.fold(lambda env: op(f(env)), names, n, c is not None)
        if isinstance(n, ast.Call):
            if not isinstance(n.func, ast.Name):
                raise self.error(n, "only functions called by plain name are allowed, like sin(t)")
            spec = FUNCTIONS.get(n.func.id)
            if spec is None:
                raise self.error(n, f"unknown function '{n.func.id}': use one of {', '.join(FUNCTIONS)}")
            if n.keywords:
                raise self.error(n, f"{n.func.id}() takes no keyword arguments")
            fn, lo, hi = spec
            if len(n.args) < lo or (hi is not None and len(n.args) > hi):
                want = str(lo) if lo == hi else (f"{lo} or {hi}" if hi else f"at least {lo}")
                raise self.error(n, f"{n.func.id}() takes {want} argument{'s' if want != '1' else ''}, "
                                      f"got {len(n.args)}")
            args = [self.node(x) for x in n.args]
            fs = [f for f, _, _ in args]
            names = frozenset().union(*(nm for _, nm, _ in args))
            call = lambda env: fn(*(f(env) for f in fs))  # noqa: E731
            return self.fold(call, names, n, all(c is not None for _, _, c in args))
        what = _REFUSED.get(type(n))
        if what is None:
            what = {ast.BinOp: "operator", ast.UnaryOp: "operator"}.get(type(n), type(n).__name__)
            if isinstance(n, (ast.BinOp, ast.UnaryOp)):
                what = f"the operator {type(n.op).__name__}"
        raise self.error(n, f"{what} is not allowed: use numbers, + - * / // % **, names and functions")

    def fold(self, fn, names, n: ast.AST, constant: bool):
        """Compute a part without variables now: its errors are parse errors, with the position."""
        if not constant:
            return (lambda env: _math(lambda: fn(env))), names, None
        try:
            v = _math(lambda: fn({}))
        except DreamvidError as e:
            raise self.error(n, str(e)) from None
        return (lambda env, v=v: v), names, v


def _error(field: str, text: str, pos: int, reason: str) -> SettingError:
    # "{field}" puts the front end's name for the field first: "--zoom: at character 12: ..."
    return SettingError(field, text, "{%s}: at character %d: %s" % (field, pos + 1, reason))


@dataclass(frozen=True)
class _Key:
    frame: int
    expr: _Expr
    pos: int  # where the key starts in the text


def _parse(text: str, field: str) -> Tuple[List[_Key], Optional[_Expr]]:
    """-> (keys sorted by frame, None) for a keyframe schedule, or ([], expr) for a bare value."""
    if not isinstance(text, str):
        raise SettingError(field, text, "must be a number or a schedule string like \"0:(1), 30:(2)\"")
    if len(text) > MAX_LENGTH:
        raise SettingError(field, text[:40] + "...", f"is too long ({len(text)} characters, at most {MAX_LENGTH})")
    i, n = 0, len(text)

    def skip(i):
        while i < n and text[i].isspace():
            i += 1
        return i

    i = skip(0)
    if i == n:
        raise SettingError(field, text, "is empty: give a number or keys like \"0:(1), 30:(2)\"")
    j = i
    while j < n and text[j].isdigit():
        j += 1
    if j == i or text[skip(j):skip(j) + 1] != ":":  # no "FRAME:" at the start: one bare value
        return [], _Compiler(field, text, text, 0).compile()
    keys: List[_Key] = []
    seen: Dict[int, int] = {}
    while True:
        start = i
        j = i
        while j < n and text[j].isdigit():
            j += 1
        if j == i:
            got = f"'{text[i]}'" if i < n else "the end"
            raise _error(field, text, i, f"expected a frame number, got {got}")
        frame = int(text[i:j])
        i = skip(j)
        if i >= n or text[i] != ":":
            raise _error(field, text, i, f"expected ':' after '{frame}'")
        i = skip(i + 1)
        if i >= n or text[i] != "(":
            raise _error(field, text, i, f"expected '(' after '{frame}:'")
        open_at, depth, k = i, 0, i
        while k < n:
            if text[k] == "(":
                depth += 1
            elif text[k] == ")":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k >= n:
            raise _error(field, text, open_at, f"'(' after '{frame}:' is never closed")
        expr = _Compiler(field, text, text[open_at + 1:k], open_at + 1).compile()
        if frame in seen:
            raise _error(field, text, start, f"frame {frame} has two keys (the first at character "
                                             f"{seen[frame] + 1}): give each frame once")
        seen[frame] = start
        keys.append(_Key(frame, expr, start))
        i = skip(k + 1)
        if i >= n:
            break
        if text[i] != ",":
            raise _error(field, text, i, f"expected ',' after key {frame}'s value, got '{text[i]}'")
        i = skip(i + 1)
        if i >= n:  # a trailing comma
            break
    keys.sort(key=lambda key: key.frame)
    return keys, None


class Schedule:
    """A setting's value per frame, from a schedule string (see the module doc).

    ``Schedule(text, field)`` parses at once (SettingError naming `field` if it is bad). ``bind(
    context)`` -> a function of the frame index for one render (config.vary.RenderContext gives
    T, fps, seed and the sound); calling an unbound schedule works when it uses only ``t``.
    ``text`` is the original string (checkpoints show it); ``needs_audio`` says it uses ``a`` or
    ``beat``; ``keys`` the key frames (empty for a bare value); ``constant`` the value when the
    text is a plain number, else None.
    """

    def __init__(self, text: str, field: str = "schedule"):
        self.text, self.field = text, field
        self._keys, self._bare = _parse(text, field)
        exprs = [k.expr for k in self._keys] or [self._bare]
        self.names: FrozenSet[str] = frozenset().union(*(x.names for x in exprs))
        self.needs_audio = bool(self.names & AUDIO_NAMES)
        self._frames = [k.frame for k in self._keys]

    @property
    def keys(self) -> Tuple[int, ...]:
        return tuple(self._frames)

    @property
    def constant(self) -> Optional[float]:
        """The value at every frame when there is one: a plain number, or numeric keys all equal."""
        exprs = [self._bare] if self._bare is not None else [k.expr for k in self._keys]
        consts = {x.const for x in exprs}
        return consts.pop() if len(consts) == 1 and None not in consts else None

    def bind(self, context) -> "BoundSchedule":
        """This schedule for one render: `context` is a config.vary.RenderContext."""
        if self.needs_audio and (context.loudness is None or context.beat is None):
            used = " and ".join(sorted(self.names & AUDIO_NAMES))
            raise SettingError(self.field, self.text, f"uses {used} but the render has no sound "
                                                      "(a video with audio, or --audio FILE for a zoom loop)")
        return BoundSchedule(self, context)

    def __call__(self, frame: int) -> float:
        missing = sorted(self.names - {"t"})
        if missing:
            raise DreamvidError(f"uses {', '.join(missing)}: bind the schedule to a render first")
        return self._value(frame, lambda t: {"t": float(t)})

    def _value(self, frame: int, env_at: Callable[[int], Env]) -> float:
        try:
            return self._compute(frame, env_at)
        except SettingError:
            raise
        except DreamvidError as e:  # a math error: "--step: division by zero (at frame 12)"
            raise SettingError(self.field, self.text, "{%s}: %s" % (self.field, e), frame) from None

    def _compute(self, frame: int, env_at: Callable[[int], Env]) -> float:
        if self._bare is not None:
            return self._bare.fn(env_at(frame))
        keys, frames = self._keys, self._frames
        i = max(bisect.bisect_right(frames, frame) - 1, 0)
        key = keys[i]
        if key.expr.const is None or frame <= key.frame or i + 1 == len(keys):
            return key.expr.fn(env_at(frame))  # an expression key, before the first key, or held
        nxt = keys[i + 1]
        v0 = key.expr.const
        v1 = nxt.expr.fn(env_at(nxt.frame))
        return v0 + (v1 - v0) * (frame - key.frame) / (nxt.frame - key.frame)

    def __repr__(self) -> str:
        return f"Schedule({self.text!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Schedule) and other.text == self.text and other.field == self.field

    def __hash__(self) -> int:
        return hash((self.text, self.field))


class BoundSchedule:
    """A Schedule bound to one render's context: ``fn(frame) -> float`` (``text`` kept)."""

    def __init__(self, schedule: Schedule, context):
        self.schedule, self.context = schedule, context
        self.text, self.needs_audio = schedule.text, schedule.needs_audio
        self._base = {"T": float(context.frames), "fps": float(context.fps), "s": float(context.seed)}

    def env(self, frame: int) -> Env:
        env = dict(self._base, t=float(frame))
        c = self.context
        if c.loudness is not None:
            env["a"] = float(c.loudness[frame]) if 0 <= frame < len(c.loudness) else 0.0
        if c.beat is not None:
            env["beat"] = float(c.beat[frame]) if 0 <= frame < len(c.beat) else 0.0
        return env

    def __call__(self, frame: int) -> float:
        return self.schedule._value(frame, self.env)

    def __repr__(self) -> str:
        return f"BoundSchedule({self.text!r}, frames={self.context.frames})"


def is_number(text: str) -> bool:
    """Whether `text` is one plain number (a value as before schedules), not a schedule."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def values(fn: Callable[[int], float], frames: int) -> List[float]:
    """fn(0), …, fn(frames - 1) (a convenience for plots and tests)."""
    return [fn(i) for i in range(frames)]


__all__ = ["Schedule", "BoundSchedule", "FUNCTIONS", "NAMES", "VARIABLES", "is_number", "values"]
