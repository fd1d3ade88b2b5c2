"""The exact calculator: big integers, fractions, exact decimals, precedence, and every rejection."""

import math
import time
from fractions import Fraction

import pytest

from llmlab.errors import LlmlabError
from llmlab.tools.calc import CalcError, CalcLimits, calculate, evaluate, format_number


@pytest.mark.parametrize("expr,want", [
    # precedence and associativity are Python's
    ("2+3*4", "14"), ("(2+3)*4", "20"), ("2**3**2", "512"), ("-2**2", "-4"), ("(-2)**2", "4"),
    ("10-4-3", "3"), ("2*3/4", "1.5"), ("7//2", "3"), ("-7//2", "-4"), ("-7%3", "2"), ("7%-3", "-2"),
    ("+-+5", "-5"), ("((((1))))", "1"), ("2 * (3 + 4) - 5 / (1 + 1)", "11.5"),
    # big integers, exactly
    ("2**200", str(2**200)), ("12345678901234567890*98765432109876543210",
                              str(12345678901234567890 * 98765432109876543210)),
    ("factorial(50)", str(math.factorial(50))), ("comb(100, 50)", str(math.comb(100, 50))),
    ("-(10**30) - 1", str(-(10**30) - 1)),
    # fractions stay exact
    ("1/3*3", "1"), ("1/3 + 1/6", "0.5"), ("1/3", "1/3"), ("-22/7", "-22/7"), ("2**-2", "0.25"),
    ("(1/3)**2", "1/9"), ("(2**64+1)/2**32", "4294967296.00000000023283064365386962890625"),
    # decimal literals are read exactly, not as binary floats
    ("0.1+0.2", "0.3"), ("0.1*3", "0.3"), ("1.1**2", "1.21"), ("1e-3", "0.001"), ("1.5e3", "1500"),
    ("0.1**3", "0.001"), ("1_000_000 * 3", "3000000"), ("0.30000000000000004 - 0.3", "0.00000000000000004"),
    ("1e400 / 1e399", "10"),
    # exact roots and powers
    ("sqrt(144)", "12"), ("sqrt(16/9)", "4/3"), ("sqrt(0.25)", "0.5"), ("8**(2/3)", "4"), ("(-8)**(1/3)", "-2"),
    ("4**0.5", "2"), ("0**0", "1"), ("1**(10**100)", "1"), ("(-1)**(10**100+1)", "-1"),
    # functions
    ("abs(-3.5)", "3.5"), ("min(3, 1/2, 2)", "0.5"), ("max(1, 2/3)", "1"), ("round(2.5)", "2"), ("round(3.5)", "4"),
    ("round(1/3, 4)", "0.3333"), ("floor(-7/2)", "-4"), ("ceil(7/2)", "4"), ("gcd(12, 18)", "6"),
    ("lcm(4, 6, 10)", "60"),
    # what people type
    ("3 × 4 ÷ 6", "2"), ("5 − 7", "-2"), ("  2+2\n", "4"),
])
def test_exact_results(expr, want):
    assert calculate(expr) == want


def test_results_are_fractions():
    assert evaluate("1/3 + 0.1") == Fraction(13, 30)
    assert evaluate("2**100") == 2**100


@pytest.mark.parametrize("value,text", [
    (Fraction(5), "5"), (Fraction(-5), "-5"), (Fraction(0), "0"), (Fraction(1, 8), "0.125"),
    (Fraction(-7, 4), "-1.75"), (Fraction(1, 3), "1/3"), (Fraction(-2, 3), "-2/3"), (Fraction(1, 1024), "0.0009765625"),
    (Fraction(1, 6), "1/6"), (Fraction(123, 100), "1.23"), (Fraction(-1, 20), "-0.05"),
])
def test_format_number(value, text):
    assert format_number(value) == text
    if "/" not in text:
        assert Fraction(text) == value  # the decimal is exact


@pytest.mark.parametrize("expr,message", [
    ("1/0", "division by zero"), ("5//0", "// by zero"), ("5%0", "% by zero"), ("0**-1", "division by zero"),
    ("1/(1-1)", "division by zero"),
    ("9**9**9", "result too large"), ("10**5000", "result too large"), ("2**(10**100)", "result too large"),
    ("factorial(10000)", "result too large"), ("comb(100000, 50000)", "result too large"),
    ("(10**3000)*(10**3000)", "result too large"), ("1e99999", "out of range"), ("1e-3000 * 1e-3000", "too precise"),
    ("sqrt(2)", "sqrt(2) is irrational"), ("2**0.5", "sqrt(2) is irrational"), ("2**(1/100000)", "irrational"),
    ("sqrt(-4)", "not a real number"), ("(-4)**(1/2)", "not a real number"), ("factorial(-1)", "negative"),
    ("factorial(2.5)", "needs integers"), ("gcd(1.5, 2)", "needs integers"),
    ("x + 1", "unsupported syntax: the name 'x'"), ("pi", "the name 'pi'"),
    ("__import__('os')", "unknown function '__import__'"), ("__import__('os').system('id')", "unsupported syntax"),
    ("open('/etc/passwd')", "unknown function"),
    ("(1).__class__", "attribute access"), ("().__class__.__bases__", "attribute access"), ("'a' * 3", "str constant"),
    ("[1, 2]", "a list"), ("1, 000", "a tuple"), ("{1}", "a set"), ("{}", "a dict"), ("lambda: 1", "lambda"),
    ("1 if 1 else 2", "conditional"), ("1 < 2", "comparison"), ("1 and 2", "'and'/'or'"), ("not 1", "'not'"),
    ("2^3", "XOR in Python; write **"), ("2 & 3", "'&'"), ("1 << 10", "'<<'"), ("~1", "'~'"),
    ("[x for x in ()]", "comprehension"), ("f'{1}'", "f-string"), ("(y := 2)", "':='"), ("True + 1", "bool"),
    ("1j", "complex"), ("None", "NoneType"), ("abs(x=1)", "keyword arguments"), ("max(*[1, 2])", "'*' unpacking"),
    ("min()", "takes 1 or more arguments"), ("abs(1, 2)", "takes 1 argument"), ("abs(1)(2)", "call of something"),
    ("", "empty expression"), ("   ", "empty expression"), ("2 +", "syntax error"), ("1 2", "syntax error"),
    ("import os", "syntax error"), ("a = 1", "syntax error"), ("1\x00", "syntax error"),
    ("(" * 300 + "1" + ")" * 300, "nested"), ("-" * 500 + "1", "nested too deeply"),
    ("1+" * 1500 + "1", "too long"),
])
def test_rejections_are_one_line(expr, message):
    with pytest.raises(CalcError) as e:
        calculate(expr)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, LlmlabError)


def test_bounded_work_fails_fast():
    # The size guard runs before the power is computed: these would otherwise take minutes or forever.
    for expr in ("9**9**9", "2**(2**64)", "(10**1000)**(10**1000)", "factorial(10**9)", "7**(10**7)"):
        t = time.process_time()
        with pytest.raises(CalcError):
            calculate(expr)
        assert time.process_time() - t < 1.0  # a generous CPU bound, not a wall-time assertion


def test_limits_are_configurable_and_checked():
    small = CalcLimits(max_chars=16, max_depth=5, max_digits=10)
    assert calculate("10**9", small) == "1000000000"
    with pytest.raises(CalcError, match="more than 10 digits"):
        calculate("10**11", small)
    with pytest.raises(CalcError, match="too long"):
        calculate("1+1+1+1+1+1+1+1+1", small)
    with pytest.raises(CalcError, match="nested too deeply"):
        calculate("-(-(-(-(-1))))", small)
    for bad in ({"max_digits": 0}, {"max_digits": 5000}, {"max_chars": -1}, {"max_depth": 1.5}):
        with pytest.raises(LlmlabError):
            CalcLimits(**bad)


def test_non_string_input():
    with pytest.raises(CalcError, match="expected an expression string"):
        calculate(12)
