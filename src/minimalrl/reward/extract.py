"""Answer extraction and normalisation for the verifiable math reward.

Everything here is plain string work, linear in the text length, and never evaluates anything:
it runs in the trainer process on untrusted model output. Deciding equivalence of two
expressions (sympy, math-verify) happens in `verify.py`, inside a time-limited worker process.

The rules follow the answer styles of the shipped benchmarks: GSM8K `#### 1,080`, MATH
`\\boxed{\\frac{3}{56}}`, `\\text{(B)}`, `204_5`, `106^\\circ`, `\\$18.90`, and Minerva
`\\boxed{4.5e33} \\mathrm{ergs}`.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_MAX_BOXES_TRIED = 20  # bounds the work on a text with thousands of unclosed boxes
_TOKEN_RE = re.compile(r"[^\s$]+")  # `\boxed 5$`: the answer runs to a space or `$`
_GSM8K_RE = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"\banswer\s+is\b\s*:?|\banswer\s*:", re.I)
_NUMBER_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?(?!\w)"
    r"|(?<![\w.])-?\.\d+(?!\w)"
)


def match_brace(text: str, open_idx: int) -> int | None:
    """Index of the `}` closing the `{` at `open_idx` (escaped `\\{`, `\\}` skipped), or None."""
    depth = 0
    for m in _BRACE_TOKEN_RE.finditer(text, open_idx):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _boxed_content(text: str, end: int) -> str | None:
    """Content of the box whose command ends at `end`: `{...}` or the `\\boxed 5` token form."""
    i = end
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        close = match_brace(text, i)
        return None if close is None else text[i + 1 : close]
    if i == end and i < len(text) and text[i].isalpha():
        return None  # `\boxedfoo` is another command, not a box
    m = _TOKEN_RE.match(text, i)
    return m.group().rstrip(".,;:") if m else None


def _last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{}` / `\\fbox{}`; an unclosed one is skipped."""
    boxes = list(_BOX_RE.finditer(text))
    for m in reversed(boxes[-_MAX_BOXES_TRIED:]):
        content = _boxed_content(text, m.end())
        if content is not None and content.strip():
            return content.strip()
    return None


def _after_answer_is(text: str) -> str | None:
    """The phrase after the last "the answer is" / "final answer is" / "answer:" marker."""
    matches = list(_ANSWER_IS_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip(" \t:*")
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left):
            close = rest.find(right, len(left))
            if close > 0:
                return rest[len(left) : close].strip() or None
    # In prose a `.` or `!` before a space ends the sentence; inside `$...$` (above) `5!` is 120.
    phrase = re.split(r"[.!](?:\s|$)|\n", rest, maxsplit=1)[0].replace("**", "")
    return phrase.strip().rstrip(".!") or None


def extract_answer(text: str) -> str | None:
    """The raw final answer in a response, or None.

    Priority: the last complete `\\boxed{...}` / `\\fbox{...}` (nested braces kept, `\\boxed 5`
    accepted), then the last GSM8K `#### N` line, then the phrase after the last "the answer is",
    "final answer is" or "answer:". The string is returned as written; see `normalize_answer`.
    """
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    gsm8k = _GSM8K_RE.findall(text)
    if gsm8k and gsm8k[-1].strip():
        return gsm8k[-1].strip().rstrip(".")
    return _after_answer_is(text)


def last_number(text: str) -> str | None:
    """The last number in `text` as written: `1,000`, `-3.5`, `.5`, `3/4`; None if there is none."""
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


# --- normalisation ------------------------------------------------------------------------

_UNIT_CMD = r"\\(?:text|textrm|textnormal|mathrm|mbox|rm|operatorname)\s*\{[^{}]*\}"
_TRAILING_UNITS_RE = re.compile(
    rf"(?<=\S)\s*(?:{_UNIT_CMD}(?:\s*\^\s*(?:\{{[^{{}}]*\}}|-?\d))?(?:\s*(?:/|\\cdot))?\s*)+$"
)
_WHOLE_TEXT_RE = re.compile(r"^\\(?:text|textbf|textrm|textnormal|mathrm|mbox)\s*\{([^{}]*)\}$")
_DEGREES_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ\s*$|°|\\degree(?![A-Za-z])")
_SPACING_RE = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad(?![A-Za-z])|~")
_TRAILING_WORDS_RE = re.compile(
    r"^([^A-Za-z\\]*\d)\s+(?!.*\b(?:and|or)\b)[A-Za-z]{2,}(?:[\s.]+[A-Za-z]+)*$"
)
_LHS_RE = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_(?:\{\w+\}|\w))?\s*=\s*([^=]+)$")
_BASE_RE = re.compile(r"^(\d[0-9A-Za-z]*)_\{?\(?(\d+)\)?\}?$")
_MAX_UNWRAP = 8  # `{{{{x}}}}` layers peeled; bounded so a hostile string costs linear time
_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?:\\?%)?$")


def _strip_wrappers(s: str) -> str:
    """Drop boxes, outer braces, math delimiters, dollars, `\\left`, `\\right`; unify `\\dfrac`."""
    s = s.strip()
    for _ in range(_MAX_UNWRAP):
        m = re.fullmatch(r"(?:\\(?:boxed|fbox)\s*)?\{(.*)\}", s, re.DOTALL)
        if not m or match_brace(s, s.index("{")) != len(s) - 1:
            break
        s = m.group(1).strip()  # `\boxed{...}` or redundant outer `{...}`
    s = re.sub(r"\\[()\[\]]", "", s.replace("\\$", "").replace("$", ""))
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\displaystyle", "", s)
    return re.sub(r"\\[dtc]frac(?![A-Za-z])", r"\\frac", s)


def normalize_answer(s: str) -> str:
    """A canonical string for an answer: wrappers, units, degrees, spacing and commas removed.

    Why: gold and model write the same value many ways (`\\$1,000`, `1000 \\text{ dollars}`,
    `106^\\circ`, `x = 3`, `204_{5}`); a cheap canonical form lets most pairs be decided by
    string or number comparison without sympy. Percent signs are kept (see `numbers_equal`).
    """
    return split_unit(s)[0]


def split_unit(s: str) -> tuple[str, str | None]:
    """`normalize_answer(s)` and a key for the trailing unit it removed (`cm^2`), or None.

    The key lets `3 \\text{ m}` differ from `3 \\text{ cm}` while `3 \\text{ cm}` still equals `3`.
    A degree sign is dropped without a key (`106^\\circ` = `106` = `106 \\text{ degrees}`).
    """
    s = _strip_wrappers(s)
    s = _DEGREES_RE.sub("", s)
    unit = None
    if m := _TRAILING_UNITS_RE.search(s):
        s, unit = s[: m.start()].strip(), _unit_key(m.group())
    if m := _WHOLE_TEXT_RE.match(s):
        s = m.group(1).rstrip("!")  # `\text{yes!}`: in words a `!` is punctuation
    s = _SPACING_RE.sub(" ", re.sub(r"\\!\s*", "", s).replace("{,}", ","))
    s = re.sub(r"\s+", " ", s).strip().rstrip(".,;:").strip()  # not `!`: `5!` is a factorial
    if s.startswith("**") or s.endswith("**"):
        s = s.strip("*").strip()
    if m := _TRAILING_WORDS_RE.match(s):
        s, unit = m.group(1).strip(), _unit_key(s[m.end(1) :]) or unit
    if m := _LHS_RE.match(s):
        s = m.group(1).strip()
    if m := _BASE_RE.match(s):
        s = m.group(1)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    return s, unit


_UNIT_WORD_RE = re.compile(r"[A-Za-z]+")
_SQUARE_RE = re.compile(r"\b(square|sq|cubic)\s+([A-Za-z]+)")
_UNIT_NAMES = {  # full names -> symbols, so `3 \text{ meters}` = `3 \text{ m}`
    "meter": "m", "metre": "m", "centimeter": "cm", "centimetre": "cm", "millimeter": "mm",
    "millimetre": "mm", "kilometer": "km", "kilometre": "km", "inch": "in", "foot": "ft",
    "feet": "ft", "yard": "yd", "mile": "mi", "second": "s", "sec": "s", "minute": "min",
    "hour": "h", "hr": "h", "gram": "g", "kilogram": "kg", "pound": "lb", "lbs": "lb",
}  # fmt: skip


def _unit_word(word: str) -> str:
    """A unit word's symbol: `Inches` -> `in`; words of 1-2 letters (`m`, `Mm`) keep their case."""
    if len(word) < 3:
        return word
    w = word.lower()
    if w.endswith(("ches", "shes", "sses", "xes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        w = w[:-1]
    return _UNIT_NAMES.get(w, w)


def _unit_key(text: str) -> str | None:
    """`\\mbox{ square inches}` -> `in^2`, `\\mathrm{~km} / \\mathrm{s}` -> `km/s`; None if none."""
    s = re.sub(r"\\(?:text|textrm|textnormal|mathrm|mbox|rm|operatorname)", " ", text)
    s = re.sub(r"[{}~]", " ", _SPACING_RE.sub(" ", s)).replace("\\cdot", "*")
    s = _SQUARE_RE.sub(lambda m: f"{m[2]}^{3 if m[1] == 'cubic' else 2}", s)
    s = _UNIT_WORD_RE.sub(lambda m: _unit_word(m.group()), s)
    return re.sub(r"\s+", "", s).strip("/*") or None


# --- plain numbers (the fast path) --------------------------------------------------------

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_MAX_DECIMAL_EXPONENT = 400  # larger powers of ten go to sympy, behind the safety checks
_DECIMAL_RE = re.compile(rf"^({_NUM})(?:[eE]([+-]?\d+))?$")
_TIMES_TEN_RE = re.compile(
    rf"^(?:({_NUM})\s*(?:\\times|\\cdot|\*|x)\s*)?10\s*\^\s*\{{?\s*([+-]?\d+)\s*\}}?$"
)
_SLASH_RE = re.compile(rf"^({_NUM})\s*/\s*({_NUM})$")
_ARG = r"(?:\{\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\}|(\d))"
_FRAC_RE = re.compile(rf"^([+-]?)\s*(\d+\s*)?\\frac\s*{_ARG}\s*{_ARG}$")


def split_percent(s: str) -> tuple[str, bool]:
    """`50\\%` -> (`50`, True); anything else -> (s, False)."""
    t = s.rstrip()
    if not t.endswith("%"):
        return s, False
    t = t[:-1]
    return (t[:-1] if t.endswith("\\") else t).rstrip(), True


def _scaled(mantissa: str | None, exponent: str) -> Fraction | None:
    """mantissa × 10^exponent as a Fraction, refusing absurd exponents."""
    e = int(exponent)
    if abs(e) > _MAX_DECIMAL_EXPONENT:
        return None
    return Fraction(mantissa or "1") * Fraction(10) ** e


def parse_number(s: str) -> Fraction | None:
    """The exact value of a plain number in `s`, or None if `s` is anything else.

    Accepts integers, decimals, `1.5e-3`, `1.5 \\times 10^{-3}`, `a/b`, `\\frac{a}{b}`, `\\frac ab`
    and mixed numbers `1\\frac{4}{5}` (= 9/5, the MATH convention). Never raises.
    """
    s = s.strip().replace(",", "") if _THOUSANDS_RE.match(s.strip()) else s.strip()
    try:
        if m := _DECIMAL_RE.match(s):
            return _scaled(m.group(1), m.group(2) or "0")
        if m := _TIMES_TEN_RE.match(s):
            return _scaled(m.group(1), m.group(2))
        if m := _SLASH_RE.match(s):
            return Fraction(m.group(1)) / Fraction(m.group(2))
        if m := _FRAC_RE.match(s):
            sign, whole, num1, num2, den1, den2 = m.groups()
            value = Fraction(num1 or num2) / Fraction(den1 or den2)
            value += int(whole) if whole else 0
            return -value if sign == "-" else value
    except (ZeroDivisionError, ValueError):
        return None
    return None


def _word_form(s: str) -> tuple[str, bool]:
    """Lower-case words of an answer with `\\text{}` unwrapped; flag whether it was wrapped."""
    s = _strip_wrappers(s).strip().rstrip(".!")
    wrapped = _WHOLE_TEXT_RE.match(s)
    if wrapped:
        s = wrapped.group(1)
    s = re.sub(r"\s+", " ", s.strip().strip("*").strip()).lower()
    choice = re.fullmatch(r"\(([a-z])\)", s)
    return (choice.group(1) if choice else s), bool(wrapped or choice)


def text_answer_key(s: str) -> str | None:
    """A key when gold `s` is a word answer (`\\text{Evelyn}`, `\\text{(B)}`, `east`), else None.

    Why: sympy reads `Evelyn` as the product E·v·e·l·y·n, so any anagram would "match".
    Single letters count only when wrapped (`\\text{B}`, `(B)`): a bare `x` is a variable.
    """
    key, marked = _word_form(s)
    if re.fullmatch(r"[a-z]+(?: [a-z]+)*", key) and (marked or len(key) >= 3):
        return key
    return None


def words_equal(answer: str, gold_key: str) -> bool:
    """Whether `answer` spells the word answer `gold_key` (ignoring case, `\\text{}`, parens)."""
    return _word_form(answer)[0] == gold_key
