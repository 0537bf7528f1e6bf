"""Verifiable math reward: is a response's final answer equivalent to the gold answer?

Three tiers, cheapest first:

1. string work in this process (`extract.py`): equal normal forms; plain numbers compared
   exactly as Fractions (GSM8K never leaves this tier); word answers compared as words.
2. safety checks that refuse what sympy could choke on (over-long or deeply nested answers,
   power towers such as `9^{9^{9}}`, division by a literal zero): the verdict is False.
3. math-verify (sympy) in a persistent worker process, one request per pair, each limited to
   `timeout` seconds; a worker that overruns is killed and replaced. A process, not a thread,
   because sympy cannot be interrupted, and math-verify's own time limit (`signal.alarm`) only
   works in the main thread.

Model text is never evaluated: only latex2sympy parses it, and only inside the worker.

Conventions (each pinned by a test in tests/test_reward_verify.py):

- percent: `50\\%` equals `50` (a gold often leaves the sign out of a "what percent" answer, and
  the paper's math-verify reward accepts it) and `0.5` (its value); `5\\%` does not equal `50`.
- decimals count at their written value: `0.5` = `1/2`, but `0.333333` != `1/3` and
  `3.000001` != `3`. Only floating-point noise is forgiven: 1e-9 relative on plain numbers, 9
  decimal places in math-verify (whose default of 6 would accept `1.414214` for `\\sqrt{2}`).
- units: a trailing `\\text{}` / `\\mathrm{}` unit or unit word is compared when both sides
  have one (`3 m` != `3 cm`; `3 \\text{ centimeters}` = `3 \\text{ cm}`, `\\text{ square inches}`
  = `\\text{ in}^2`); a unit on one side only is accepted (`3 cm` = `3`); a degree sign is
  ignored. Spellings outside a small table of names (`feet` = `ft`) count as different units.
- `!` is a factorial in math (`\\boxed{5!}` = 120); only prose or a word answer ends with one.
- identical normal forms are equal without evaluation (`9^{9^{9^{9}}}` equals itself), except
  a division by a literal zero, which is undefined and never equal.
- refused as wrong before sympy: answers over MAX_ANSWER_CHARS, nested over MAX_NESTING (10)
  brackets deep, or with towers / huge numeric exponents. At the nesting bound sympy answers in
  <= 0.6 s (see MAX_NESTING), so deep nesting no longer meets the time limit; an expression
  costly to simplify rather than to parse (`(x+y+1)^{60}`, or ~1000 characters of linear factors:
  ~4 s each) still relies on the `timeout`, and near it the verdict can depend on machine load.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction

from minimalrl.reward._worker import WORKER
from minimalrl.reward.extract import (
    extract_answer,
    last_number,
    match_brace,
    parse_number,
    split_percent,
    split_unit,
    text_answer_key,
    words_equal,
)

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1000  # the longest Minerva gold is ~150 characters
# Deeper answers are refused before sympy, so no verdict depends on machine load. Measured on 2
# shared cores (load 4.6): at depth 10 every family tried (parens, brackets, \frac, continued
# fractions, \sqrt[3]) finishes in <= 0.6 s; past 10 continued fractions double per level
# (12: 1.2 s, 14: 2.9 s, 16: 15 s) and nested \frac at 16 takes 2.7 s. Golds nest at most 4 deep.
MAX_NESTING = 10
MAX_EXPONENT_DEPTH = 2  # `e^{-x^2}` is fine; `a^{b^{c^{d}}}` is refused
MAX_EXPONENT_LOG10 = 4.0  # a numeric exponent above 10^4: `10^{10^{10}}` has 10^10 digits
# A decimal counts at its written value: 0.333333 is not 1/3 and 3.000001 is not 3. The slack only
# absorbs floating-point noise (0.30000000000000004 = 0.3); the sympy tier rounds to 9 places.
REL_TOL = Fraction(1, 10**9)

_ZERO_DIV_RE = re.compile(
    r"\\frac\s*(?:\{[^{}]*\}|\w)\s*(?:\{\s*[+-]?0+(?:\.0*)?\s*\}|0)|/\s*[+-]?0+(?![\d.])"
)
_NUMERIC_POWER_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*\^\s*\{?\s*(\d+(?:\.\d+)?)\s*\}?$")


# --- safety checks --------------------------------------------------------------------------


def _nesting_depth(s: str) -> int:
    """Deepest bracket nesting, counting `(`, `[` and `{` alike."""
    depth = best = 0
    for c in s:
        if c in "([{":
            depth += 1
            best = max(best, depth)
        elif c in ")]}":
            depth -= 1
    return best


def _exponent_depth(s: str) -> int:
    """How many exponents are stacked: `x^2` is 1, `e^{-x^2}` is 2, `10^{10^{10^{10}}}` is 4."""
    stack: list[bool] = []  # per open brace: does it hold an exponent?
    depth = best = 0
    prev = ""
    for c in s:
        if c == "{":
            stack.append(prev == "^")
            depth += stack[-1]
        elif c == "}" and stack:
            depth -= stack.pop()
        elif c == "^":
            best = max(best, depth + 1)
        if not c.isspace():
            prev = c
    return best


def _exponent_log10(exponent: str) -> float | None:
    """log10 of a numeric exponent such as `100000` or `10^{10}`; None if not purely numeric."""
    e = exponent.strip()
    try:
        if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", e):
            return math.log10(abs(float(e)) or 1.0)
        if m := _NUMERIC_POWER_RE.match(e):
            return float(m.group(2)) * math.log10(max(float(m.group(1)), 1.0))
    except (OverflowError, ValueError):
        return math.inf
    return None


def _huge_exponent(s: str) -> bool:
    """Whether some `^` carries a numeric exponent above 10^MAX_EXPONENT_LOG10."""
    for m in re.finditer(r"\^\s*", s):
        i = m.end()
        if i < len(s) and s[i] == "{":
            close = match_brace(s, i)
            exponent = s[i + 1 : close] if close is not None else s[i + 1 :]
        else:
            exponent = re.match(r"[+-]?\d*", s[i:]).group()  # type: ignore[union-attr]
        size = _exponent_log10(exponent) if exponent else None
        if size is not None and size > MAX_EXPONENT_LOG10:
            return True
    return False


def too_hard(s: str) -> bool:
    """Whether a normalised answer is refused before sympy sees it (its verdict is False)."""
    return (
        len(s) > MAX_ANSWER_CHARS
        or _nesting_depth(s) > MAX_NESTING
        or _exponent_depth(s) > MAX_EXPONENT_DEPTH
        or _huge_exponent(s)
        or _ZERO_DIV_RE.search(s) is not None
    )


# --- the in-process tiers -------------------------------------------------------------------


def _close(x: Fraction, y: Fraction, loose: bool) -> bool:
    """Exact equality, or within REL_TOL relative when a decimal is involved."""
    return x == y or (loose and abs(x - y) <= REL_TOL * max(abs(x), abs(y)))


def numbers_equal(answer: str, gold: str) -> bool | None:
    """Compare two normalised plain numbers; None if either is not a plain number.

    A side written with `%` also matches its value / 100 (`50\\%` = `50` = `0.5`), as in
    math-verify. Integers and fractions compare exactly; a decimal within 1e-9 relative (noise).
    """
    (a_body, a_pct), (g_body, g_pct) = split_percent(answer), split_percent(gold)
    x, y = parse_number(a_body), parse_number(g_body)
    if x is None or y is None:
        return None
    xs = {x, x / 100} if a_pct and not g_pct else {x}
    ys = {y, y / 100} if g_pct and not a_pct else {y}
    loose = "." in a_body or "." in g_body
    return any(_close(u, v, loose) for u in xs for v in ys)


def _quick_verdict(answer: str | None, gold: str) -> bool | tuple[str, str]:
    """The verdict when string work settles it, else the normalised (answer, gold) for sympy."""
    if answer is None or len(answer) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    gold_key = text_answer_key(gold)
    if gold_key is not None:
        return words_equal(answer, gold_key)
    (a, a_unit), (g, g_unit) = split_unit(answer), split_unit(gold)
    if a_unit and g_unit and a_unit != g_unit:
        return False  # `3 \\text{ m}` is not `3 \\text{ cm}`; a unit on one side only is fine
    if not a or not g or _ZERO_DIV_RE.search(a) or _ZERO_DIV_RE.search(g):
        return False  # `\frac{1}{0}` is undefined, so not equal even to itself
    if a == g:  # the same expression, even one too big to evaluate (`9^{9^{9^{9}}}`)
        return True
    if too_hard(a) or too_hard(g):
        return False
    same = numbers_equal(a, g)
    return (a, g) if same is None else same


def _answer_of(response: str, fallback_last_number: bool) -> str | None:
    """The extracted answer, or the last number when asked and nothing was extracted."""
    answer = extract_answer(response)
    if answer is None and fallback_last_number:
        answer = last_number(response)
    return answer


# --- public API -----------------------------------------------------------------------------


def verify_batch(
    responses: list[str],
    golds: list[str],
    *,
    fallback_last_number: bool = True,
    timeout: float = 5.0,
) -> list[bool]:
    """Score many responses against their gold answers; see `is_correct`.

    Each pair that needs sympy gets its own `timeout`: a hanging pair gives False and the others
    are still scored. Pairs go through one worker in turn, so a batch takes at most
    (pairs needing sympy) × `timeout` seconds.
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    verdicts: list[bool | tuple[str, str]] = []
    for response, gold in zip(responses, golds):
        try:
            answer = _answer_of(response, fallback_last_number)
            verdicts.append(_quick_verdict(answer, str(gold)))  # an int gold is fine too
        except Exception:  # a bug here must not crash training on one odd response
            logger.exception("reward: string tier failed on %.200r", response)
            verdicts.append(False)
    pending = [i for i, v in enumerate(verdicts) if not isinstance(v, bool)]
    if pending:
        pairs: list[tuple[str, str]] = [verdicts[i] for i in pending]  # type: ignore[misc]
        for i, ok in zip(pending, WORKER.compare(pairs, timeout)):
            verdicts[i] = ok
    return [bool(v) for v in verdicts]


def is_correct(
    response_text: str,
    gold: str,
    *,
    fallback_last_number: bool = True,
    timeout: float = 5.0,
) -> bool:
    """Whether the final answer of `response_text` is mathematically equivalent to `gold`.

    The answer is the last `\\boxed{}`, `#### N` or "the answer is ..." (see `extract_answer`);
    with `fallback_last_number` (on by default, as in `TrainConfig`), a response with none of
    these is judged by its last plain number; off, it is wrong.
    Returns within about `timeout` seconds once the worker runs (its one-off start, ~0.5 s, is
    not counted) and never raises on any text. Safe from any thread; concurrent callers share
    one worker and take turns.
    """
    return verify_batch(
        [response_text], [gold], fallback_last_number=fallback_last_number, timeout=timeout
    )[0]


def reward_values(
    correct: list[bool], *, correct_reward: float = 1.0, wrong_reward: float = -1.0
) -> list[float]:
    """Map verdicts to rewards: +1 / -1 as in the paper's analysis, or e.g. 1 / 0."""
    return [correct_reward if ok else wrong_reward for ok in correct]


def warmup() -> None:
    """Start the sympy worker now, so the first scored batch does not pay its start-up."""
    WORKER.start()
