"""DolphinScheduler's `$[...]` time expressions, evaluated against a base time (pure).

The base is the instance's `system.datetime` (its schedule time, else its start time), given
by the caller: nothing here reads a clock. Supported, as DolphinScheduler's
`TimePlaceholderUtils` documents them:

* a Java date pattern: `$[yyyyMMdd]`, `$[HHmmss]`, `$[yyyy-MM-dd HH:mm:ss]`;
* day arithmetic after the pattern: `$[yyyyMMdd+1]`, `$[yyyyMMdd-7*2]` (weeks),
  `$[HHmmss-1/24]` (an hour), `$[HHmmss+30/24/60]` (minutes): the number after the last `+`
  or `-` is in days, with `*` and `/` (the sign is only arithmetic when a digit follows it,
  so `yyyy-MM-dd` stays a pattern);
* functions: `add_months(fmt,N)`, `this_day(fmt)`, `last_day(fmt)`,
  `month_first_day(fmt,N)` / `month_begin(fmt,N)`, `month_last_day(fmt,N)` /
  `month_end(fmt,N)`, `week_first_day(fmt,N)` / `week_begin(fmt,N)` (Monday),
  `week_last_day(fmt,N)` / `week_end(fmt,N)` (Sunday), `year_week(fmt[,first_day])`
  (year and week number, the week starting on `first_day`, 1 = Monday .. 7 = Sunday, the
  pattern's separator kept: `2026-48` or `202648`), `timestamp(expr)` (epoch seconds of
  what `expr` formats, read back at the pattern's precision).

An expression that is none of these raises `TimeExprError`; callers leave it as written.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from streams.core.errors import TideflowError


class TimeExprError(TideflowError):
    """A `$[...]` expression that is not one of the supported forms."""


_MONTHS: Final = [calendar.month_abbr[i] for i in range(13)]
_MONTH_NAMES: Final = [calendar.month_name[i] for i in range(13)]
_DAYS: Final = list(calendar.day_abbr)  # Monday first
_DAY_NAMES: Final = list(calendar.day_name)
_LETTERS: Final = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|.", re.S)


def format_java(pattern: str, t: datetime) -> str:
    """`t` formatted by a Java `SimpleDateFormat` pattern (the letters DolphinScheduler users
    write: y M d H h k K m s S E a D u w; text in single quotes is copied)."""
    out: list[str] = []
    for m in _LETTERS.finditer(pattern):
        quoted, letter = m.group(1), m.group(2)
        token = m.group(0)
        if quoted is not None:
            out.append(quoted.replace("''", "'") if quoted else "'")
        elif letter is None:
            out.append(token)
        else:
            out.append(_field(letter, len(token), t))
    return "".join(out)


def _num(value: int, width: int) -> str:
    return str(value).zfill(width)


def _field(letter: str, n: int, t: datetime) -> str:
    match letter:
        case "y":
            return _num(t.year % 100, 2) if n == 2 else _num(t.year, n)
        case "M":
            if n >= 4:
                return _MONTH_NAMES[t.month]
            return _MONTHS[t.month] if n == 3 else _num(t.month, n)
        case "d":
            return _num(t.day, n)
        case "H":
            return _num(t.hour, n)
        case "k":
            return _num(t.hour or 24, n)
        case "K":
            return _num(t.hour % 12, n)
        case "h":
            return _num(t.hour % 12 or 12, n)
        case "m":
            return _num(t.minute, n)
        case "s":
            return _num(t.second, n)
        case "S":
            return _num(t.microsecond // 1000, n)
        case "E":
            return _DAY_NAMES[t.weekday()] if n >= 4 else _DAYS[t.weekday()]
        case "a":
            return "AM" if t.hour < 12 else "PM"
        case "D":
            return _num(t.timetuple().tm_yday, n)
        case "u":
            return str(t.isoweekday())
        case "w":
            return _num(t.isocalendar()[1], n)
    raise TimeExprError(f"expected a date pattern letter, found {letter!r}")


def _parse_java(pattern: str, text: str) -> datetime:
    """Read back what `format_java(pattern, t)` wrote (numeric fields only), in UTC."""
    parts = {"y": 1970, "M": 1, "d": 1, "H": 0, "m": 0, "s": 0, "S": 0}
    pos = 0
    for m in _LETTERS.finditer(pattern):
        quoted, letter = m.group(1), m.group(2)
        if quoted is not None:
            pos += len(quoted.replace("''", "'")) if quoted else 1
            continue
        if letter is None:
            pos += 1
            continue
        n = len(m.group(0))
        digits = text[pos : pos + n]
        if not digits.isdigit() or letter not in parts:
            raise TimeExprError(f"cannot read {text!r} back with pattern {pattern!r}")
        parts[letter] = int(digits)
        pos += n
    return datetime(
        parts["y"], parts["M"], parts["d"], parts["H"], parts["m"], parts["s"],
        parts["S"] * 1000, tzinfo=UTC,
    )  # fmt: skip


_ARITH_TOKEN: Final = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/()])")


def _arith(expr: str) -> float:
    """A number from `+ - * /`, parentheses and literals: never `eval`."""
    tokens: list[str] = _ARITH_TOKEN.findall(expr)
    if "".join(tokens) != expr.replace(" ", "") or not tokens:
        raise TimeExprError(f"expected arithmetic of numbers, found {expr!r}")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> float:
        tok = take() if peek() is not None else ""
        if tok == "(":
            value = sum_()
            if take() != ")":
                raise TimeExprError(f"unbalanced parentheses in {expr!r}")
            return value
        if tok == "-":
            return -atom()
        try:
            return float(tok)
        except ValueError:
            raise TimeExprError(f"expected a number in {expr!r}, found {tok!r}") from None

    def product() -> float:
        value = atom()
        while peek() in ("*", "/"):
            op, rhs = take(), atom()
            if op == "/" and rhs == 0:
                raise TimeExprError(f"division by zero in {expr!r}")
            value = value * rhs if op == "*" else value / rhs
        return value

    def sum_() -> float:
        value = product()
        while peek() in ("+", "-"):
            op, rhs = take(), product()
            value = value + rhs if op == "+" else value - rhs
        return value

    try:
        result = sum_()
    except IndexError:
        raise TimeExprError(f"incomplete arithmetic {expr!r}") from None
    if pos != len(tokens):
        raise TimeExprError(f"unexpected {tokens[pos]!r} in {expr!r}")
    return result


def add_months(t: datetime, months: int) -> datetime:
    index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(index, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


def _shifted(expr: str, base: datetime) -> tuple[str, datetime]:
    """(pattern, time) of a pattern with optional day arithmetic after its last sign."""
    for sign in ("+", "-"):
        i = expr.rfind(sign)
        if i > 0 and i + 1 < len(expr) and expr[i + 1].isdigit():
            days = _arith(expr[i + 1 :])
            minutes = round(days * 24 * 60)
            delta = timedelta(minutes=minutes if sign == "+" else -minutes)
            return expr[:i], base + delta
    return expr, base


_FUNC: Final = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.S)


def _args(raw: str, name: str, n_min: int, n_max: int) -> list[str]:
    args = [a.strip() for a in raw.split(",")] if raw.strip() else []
    if not n_min <= len(args) <= n_max:
        raise TimeExprError(f"{name}: expected {n_min} to {n_max} arguments, found {len(args)}")
    return args


def _int_arg(args: list[str], i: int, default: int) -> int:
    if len(args) <= i:
        return default
    try:
        return int(args[i])
    except ValueError:
        raise TimeExprError(f"expected a whole number, found {args[i]!r}") from None


def _week_start(t: datetime, first_iso_day: int = 1) -> datetime:
    return t - timedelta(days=(t.isoweekday() - first_iso_day) % 7)


def _year_week(pattern: str, t: datetime, first_iso_day: int) -> str:
    # The week holding t, starting on first_iso_day; week 1 holds January 4th and the year is
    # that of the week's fourth day, as ISO 8601 counts (first day Monday: the ISO week).
    start = _week_start(t, first_iso_day)
    anchor = start + timedelta(days=3)
    first_start = _week_start(datetime(anchor.year, 1, 4, tzinfo=t.tzinfo), first_iso_day)
    week = (start - first_start).days // 7 + 1
    sep = "-" if "-" in pattern else ""
    return f"{anchor.year}{sep}{week:02d}"


def evaluate(expr: str, base: datetime) -> str:
    """The text a `$[expr]` stands for at `base`; raises `TimeExprError`."""
    m = _FUNC.match(expr)
    if m is None:
        pattern, t = _shifted(expr.strip(), base)
        if not pattern or not any(c.isalpha() for c in pattern):
            raise TimeExprError(f"expected a date pattern, found {expr!r}")
        return format_java(pattern, t)
    name, raw = m.group(1), m.group(2)
    if name == "timestamp":
        inner = raw.strip()
        pattern, _ = _shifted(inner, base)
        return str(int(_parse_java(pattern, evaluate(inner, base)).timestamp()))
    if name in ("this_day", "last_day"):
        (fmt,) = _args(raw, name, 1, 1)
        return format_java(fmt, base if name == "this_day" else base - timedelta(days=1))
    if name == "year_week":
        args = _args(raw, name, 1, 2)
        first = _int_arg(args, 1, 1)
        if not 1 <= first <= 7:
            raise TimeExprError(f"year_week: expected a first day 1-7, found {first}")
        return _year_week(args[0], base, first)
    args = _args(raw, name, 1, 2)
    fmt, n = args[0], _int_arg(args, 1, 0)
    match name:
        case "add_months":
            t = add_months(base, n)
        case "month_first_day" | "month_begin":
            t = add_months(base, n).replace(day=1)
        case "month_last_day" | "month_end":
            t = add_months(base, n)
            t = t.replace(day=calendar.monthrange(t.year, t.month)[1])
        case "week_first_day" | "week_begin":
            t = _week_start(base) + timedelta(weeks=n)
        case "week_last_day" | "week_end":
            t = _week_start(base) + timedelta(weeks=n, days=6)
        case _:
            raise TimeExprError(f"expected a known time function, found {name!r}")
    return format_java(fmt, t)
