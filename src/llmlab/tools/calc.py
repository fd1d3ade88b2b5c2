"""The calculator tool: exact arithmetic over a whitelisted Python expression AST (never ``eval``).

    llmlab tool calc "2**100 / 6"            ->  633825300114114700748351602688/3
    from llmlab.tools.calc import calculate
    calculate("0.1 + 0.2")                   ->  "0.3"
    calculate("sqrt(2)")                     ->  CalcError: sqrt(2) is irrational: no exact result

What it takes. ``ast.parse(expr, mode="eval")``, then a walk that accepts only:

* numbers: integers of any size, and decimal literals (``0.1``, ``1.5e-3``) read *exactly* from their source
  text (``0.1`` is 1/10, not the nearest binary float); ``1_000`` style underscores;
* ``+ - * / // % **``, unary ``+``/``-``, parentheses; ``×``, ``÷`` and ``−`` are read as ``* / -``;
* the functions ``abs min max round floor ceil sqrt gcd lcm factorial comb``, positional arguments only.

Every value is a ``fractions.Fraction``, so ``/`` is exact and ``1/3*3`` is 1. A power's exponent must be an
integer, or a fraction p/q whose q-th root of the base is exact (``8**(2/3)`` = 4, ``sqrt(x)`` = ``x**(1/2)``);
anything irrational is an error rather than an approximation. ``^`` is an error with a hint (in Python it is
XOR, and a model that means "power" should learn ``**``).

Bounds (``CalcLimits``): expression length, AST nesting depth, and the size of every intermediate and final
number (``max_digits`` decimal digits of numerator or denominator), checked *before* a power or factorial is
computed, so ``9**9**9`` fails at once instead of eating the CPU.

Result format (``format_number``), what the model sees:

* an integer plainly: ``-42``;
* a rational whose denominator has only the prime factors 2 and 5 (a terminating decimal) as that exact
  decimal: ``0.125``, ``-1.75``, ``0.3``;
* any other rational as ``p/q`` in lowest terms: ``1/3``, ``-22/7``.

Errors raise ``CalcError`` (an ``LlmlabError``) with one line: ``division by zero``, ``result too large``,
``unsupported syntax: ...`` naming the construct, ``unknown function 'foo'``, ``syntax error ...``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction

from llmlab.errors import LlmlabError

LOG2_10 = math.log2(10)


class CalcError(LlmlabError):
    """A calculator expression that is malformed, unsupported, unbounded or undefined (one line)."""


@dataclass(frozen=True)
class CalcLimits:
    """What one expression may cost. The defaults let a person compute 2**13000 (3914 digits) but keep one call to
    milliseconds."""

    max_chars: int = 2000  # expression length
    max_depth: int = 64  # AST nesting depth
    max_digits: int = 4000  # decimal digits of any numerator or denominator, intermediate or final

    def __post_init__(self):
        for name in ("max_chars", "max_depth", "max_digits"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise LlmlabError(f"CalcLimits.{name} must be a positive integer, got {v!r}")
        if self.max_digits > 4299:
            # Python refuses str() of an int over 4300 digits (sys.get_int_max_str_digits); the bit-length
            # check below lets through at most max_digits + 1 digits.
            raise LlmlabError(f"CalcLimits.max_digits must be at most 4299, got {self.max_digits}")

    @property
    def max_bits(self) -> int:
        return int(self.max_digits * LOG2_10) + 1


# ----------------------------------------------------------------------------------------------------------
# Formatting


def format_number(x: Fraction | int) -> str:
    """Integers plainly, terminating rationals as exact decimals, others as ``p/q`` (see the module doc)."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    q, twos, fives = x.denominator, 0, 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1:
        return f"{x.numerator}/{x.denominator}"
    places = max(twos, fives)  # x * 10**places is an integer, and no smaller power works
    scaled = abs(x.numerator) * 10**places // x.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if x < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


# ----------------------------------------------------------------------------------------------------------
# Checking and evaluating


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**"}
_UNARY = {ast.UAdd: "+", ast.USub: "-"}
# What a rejected node is called in the error message.
_NAMES = {
    ast.BitXor: "'^' (XOR in Python; write ** for a power)", ast.BitAnd: "'&'", ast.BitOr: "'|'",
    ast.LShift: "'<<'", ast.RShift: "'>>'", ast.MatMult: "'@'", ast.Invert: "'~'", ast.Not: "'not'",
    ast.Compare: "a comparison", ast.BoolOp: "'and'/'or'", ast.IfExp: "a conditional expression",
    ast.Attribute: "attribute access", ast.Subscript: "subscripting", ast.Lambda: "lambda",
    ast.List: "a list", ast.Tuple: "a tuple (write 1000, not 1,000)", ast.Dict: "a dict", ast.Set: "a set",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator", ast.JoinedStr: "an f-string", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.Slice: "a slice", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Constant):
        return f"the {type(node.value).__name__} constant {node.value!r}"[:80]
    if isinstance(node, ast.Call):
        return "a call of something that is not a function name"
    if isinstance(node, ast.Tuple) and len(node.elts) < 2:
        return "an empty tuple" if not node.elts else "a tuple"
    return _NAMES.get(type(node), type(node).__name__)


def _paren(x: Fraction) -> str:
    text = format_number(x)
    return text if x >= 0 and x.denominator == 1 else f"({text})"


def _ipow_exact_root(n: int, q: int) -> int | None:
    """The integer r >= 0 with r**q == n (n >= 0), or None."""
    if n < 2:
        return n
    if q > n.bit_length():  # 2**q > n: no integer root above 1
        return None
    # Newton's method on integers, started above the root.
    r = 1 << -(-n.bit_length() // q)
    while True:
        s = ((q - 1) * r + n // r ** (q - 1)) // q
        if s >= r:
            break
        r = s
    return r if r**q == n else None


class _Evaluator:
    def __init__(self, source: str, limits: CalcLimits):
        self.source = source
        self.limits = limits

    # Size guard: every value that comes out of an operation passes here.
    def _check(self, x: Fraction) -> Fraction:
        bits = self.limits.max_bits
        if x.numerator.bit_length() > bits:
            raise CalcError(f"result too large (more than {self.limits.max_digits} digits)")
        if x.denominator.bit_length() > bits:
            raise CalcError(f"result too precise (a denominator of more than {self.limits.max_digits} digits)")
        return x

    def eval(self, node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            x = self.eval(node.operand)
            return -x if isinstance(node.op, ast.USub) else x
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return self._binop(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node)
        if isinstance(node, (ast.UnaryOp, ast.BinOp)):
            raise CalcError(f"unsupported syntax: {_describe(node.op)}")
        raise CalcError(f"unsupported syntax: {_describe(node)}")

    def _constant(self, node: ast.Constant) -> Fraction:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CalcError(f"unsupported syntax: {_describe(node)}")
        if isinstance(v, int):
            return self._check(Fraction(v))
        # A decimal literal: read its source text exactly instead of the binary float Python made of it.
        text = (ast.get_source_segment(self.source, node) or repr(v)).replace("_", "")
        mantissa, _, exp = text.lower().partition("e")
        if exp and abs(int(exp)) > self.limits.max_digits + len(mantissa):
            raise CalcError(f"the literal {text[:40]} is out of range (more than {self.limits.max_digits} digits)")
        return self._check(Fraction(text))

    def _binop(self, node: ast.BinOp) -> Fraction:
        a, b = self.eval(node.left), self.eval(node.right)
        op = type(node.op)
        if op is ast.Add:
            return self._check(a + b)
        if op is ast.Sub:
            return self._check(a - b)
        if op is ast.Mult:
            return self._check(a * b)
        if op in (ast.Div, ast.FloorDiv, ast.Mod) and b == 0:
            raise CalcError("division by zero" if op is ast.Div else f"{_BINOPS[op]} by zero")
        if op is ast.Div:
            return self._check(a / b)
        if op is ast.FloorDiv:
            return self._check(Fraction(a // b))
        if op is ast.Mod:
            return self._check(a % b)
        return self._power(a, b)

    def _power(self, a: Fraction, b: Fraction) -> Fraction:
        if a == 0 and b < 0:
            raise CalcError("division by zero (0 to a negative power)")
        if a == 0 or a == 1 or b == 0:
            return Fraction(0) if (a == 0 and b != 0) else Fraction(1)
        if a == -1 and b.denominator == 1:
            return Fraction(-1 if b.numerator % 2 else 1)
        p, q = b.numerator, b.denominator
        # Size of |a|**|p/q| in bits, estimated from the larger of numerator and denominator, before computing.
        size = max(abs(a.numerator).bit_length(), a.denominator.bit_length())
        if (size - 1) * abs(p) / q > self.limits.max_bits:
            raise CalcError(f"result too large (more than {self.limits.max_digits} digits)")
        if q != 1:
            if a < 0 and q % 2 == 0:
                raise CalcError(f"{_paren(a)}**({p}/{q}) is not a real number")
            sign = -1 if a < 0 else 1
            rn, rd = _ipow_exact_root(abs(a.numerator), q), _ipow_exact_root(a.denominator, q)
            if rn is None or rd is None:
                what = f"sqrt({format_number(a)})" if q == 2 else f"{_paren(a)}**({p}/{q})"
                raise CalcError(f"{what} is irrational: no exact result")
            a = Fraction(sign * rn, rd)
        return self._check(a**p)

    def _call(self, node: ast.Call) -> Fraction:
        name = node.func.id
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise CalcError(f"unknown function {name!r} (known: {', '.join(sorted(_FUNCTIONS))})")
        if node.keywords:
            raise CalcError(f"unsupported syntax: keyword arguments in {name}()")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise CalcError(f"unsupported syntax: {_describe(arg)}")
        args = [self.eval(a) for a in node.args]
        lo, hi = _ARITY[name]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or more" if hi > 99 else f"{lo} to {hi}"
            raise CalcError(f"{name}() takes {want} argument{'s' if want != '1' else ''}, got {len(args)}")
        return self._check(Fraction(fn(self, name, *args)))


def _int_arg(name: str, x: Fraction) -> int:
    if x.denominator != 1:
        raise CalcError(f"{name}() needs integers, got {format_number(x)}")
    return x.numerator


def _sqrt(ev: _Evaluator, name: str, x: Fraction) -> Fraction:
    if x < 0:
        raise CalcError(f"sqrt({format_number(x)}) is not a real number")
    return ev._power(x, Fraction(1, 2))


def _round(ev: _Evaluator, name: str, x: Fraction, nd: Fraction | None = None) -> Fraction:
    # Python's rule: halves go to the even neighbour (round(2.5) == 2), exactly, because x is a Fraction.
    if nd is None:
        return Fraction(round(x))
    places = _int_arg(name, nd)
    if abs(places) > ev.limits.max_digits:
        raise CalcError(f"round(): {places} places is out of range")
    return round(x, places)


def _factorial(ev: _Evaluator, name: str, x: Fraction) -> int:
    n = _int_arg(name, x)
    if n < 0:
        raise CalcError("factorial() of a negative number is undefined")
    if n > 1 and math.lgamma(n + 1) / math.log(10) > ev.limits.max_digits:
        raise CalcError(f"result too large (more than {ev.limits.max_digits} digits)")
    return math.factorial(n)


def _comb(ev: _Evaluator, name: str, n: Fraction, k: Fraction) -> int:
    n_, k_ = _int_arg(name, n), _int_arg(name, k)
    if n_ < 0 or k_ < 0:
        raise CalcError("comb() needs non-negative integers")
    if 0 < k_ < n_:
        digits = (math.lgamma(n_ + 1) - math.lgamma(k_ + 1) - math.lgamma(n_ - k_ + 1)) / math.log(10)
        if digits > ev.limits.max_digits:
            raise CalcError(f"result too large (more than {ev.limits.max_digits} digits)")
    return math.comb(n_, k_)


_FUNCTIONS = {
    "abs": lambda ev, name, x: abs(x),
    "min": lambda ev, name, *xs: min(xs),
    "max": lambda ev, name, *xs: max(xs),
    "round": _round,
    "floor": lambda ev, name, x: math.floor(x),
    "ceil": lambda ev, name, x: math.ceil(x),
    "sqrt": _sqrt,
    "gcd": lambda ev, name, *xs: math.gcd(*(_int_arg(name, x) for x in xs)),
    "lcm": lambda ev, name, *xs: math.lcm(*(_int_arg(name, x) for x in xs)),
    "factorial": _factorial,
    "comb": _comb,
}
_MANY = 1000
_ARITY = {"abs": (1, 1), "min": (1, _MANY), "max": (1, _MANY), "round": (1, 2), "floor": (1, 1),
          "ceil": (1, 1), "sqrt": (1, 1), "gcd": (1, _MANY), "lcm": (1, _MANY), "factorial": (1, 1),
          "comb": (2, 2)}
FUNCTIONS = tuple(sorted(_FUNCTIONS))


def _depth(node: ast.AST, limit: int) -> None:
    """Raise if the tree is deeper than ``limit`` (iteratively, so a deep tree cannot overflow the stack)."""
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        if d > limit:
            raise CalcError(f"expression nested too deeply (more than {limit} levels)")
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n))


def evaluate(expr: str, limits: CalcLimits | None = None) -> Fraction:
    """The exact value of ``expr``, or ``CalcError`` with a one-line reason."""
    limits = limits or CalcLimits()
    if not isinstance(expr, str):
        raise CalcError(f"expected an expression string, got {type(expr).__name__}")
    if len(expr) > limits.max_chars:
        raise CalcError(f"expression too long ({len(expr)} characters; at most {limits.max_chars})")
    source = expr.translate(_UNICODE_OPS).strip()
    if not source:
        raise CalcError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise CalcError(f"syntax error{where}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise CalcError("expression nested too deeply") from None
    except ValueError as e:  # e.g. a NUL byte
        raise CalcError(f"syntax error: {e}") from None
    _depth(tree, limits.max_depth)
    try:
        return _Evaluator(source, limits).eval(tree)
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except (OverflowError, ValueError) as e:  # e.g. lgamma overflow, an int too long to convert
        raise CalcError(f"result too large or undefined: {e}") from None


_UNICODE_OPS = str.maketrans({"×": "*", "÷": "/", "−": "-", "·": "*"})


def calculate(expr: str, limits: CalcLimits | None = None) -> str:
    """``evaluate`` then ``format_number``: the text the model (or the CLI) sees."""
    return format_number(evaluate(expr, limits))
