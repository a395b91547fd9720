"""A task's text with its parameters in it, so that no value can become code (pure).

DolphinScheduler pastes `${name}` values into scripts; a value holding `$(cmd)`, a backtick,
`;` or a newline then runs as code. Here each target gets the form that keeps a value data:

* SHELL: `${name}` becomes a reference to an environment variable holding the value: the
  parameter's own name when it is a plain, allowed environment name (bash's own `${name}`),
  else a `TIDEFLOW_PARAM_<n>` variable the worker sets. Bash never re-reads an expansion's
  result as code (no `$(...)`, backticks, `;`, newlines); an unquoted reference is still
  split into words and globbed, as any shell variable is: quote it (`"${name}"`).
* PYTHON: `${name}` becomes the expression `bytes((50, 48)).decode()`, the value's UTF-8
  bytes as numbers: no quote, backslash or letter of the value reaches the source, so it
  cannot end a string literal or form a statement. It is an expression: write
  `day = ${day}`, not `"${day}"` (inside a literal it stays visible, inert text).
* SQL: `${name}` becomes a `%s` placeholder and the value is bound (`sql`); `%` in the
  statement's own text is doubled for the driver.
* text (HTTP URL, body, headers): pasted; in a URL percent-encoded (`url`); a header value
  with CR or LF is refused by the HTTP task.

`$[...]` time expressions are evaluated against the attempt's `system.datetime` first: they
are the author's patterns, their output digits and the pattern's own characters. A `${name}`
that is not a parameter stays as written (in a shell script, bash's own variable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from streams.core.params import param_problem
from streams.core.resolve import REF, TIME, base_time
from streams.core.time_expr import TimeExprError, evaluate

PARAM_ENV_PREFIX: Final = "TIDEFLOW_PARAM_"


def times(text: str, params: Mapping[str, str]) -> str:
    """`text` with its `$[...]` time expressions evaluated (left as written without a base)."""
    base = base_time(params)
    if base is None or "$[" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        try:
            return evaluate(m.group(1), base)
        except TimeExprError:
            return m.group(0)

    return TIME.sub(one, text)


def env_name(name: str) -> bool:
    """True when a parameter reaches a process under its own name."""
    return param_problem(name, "") is None


def shell(script: str, params: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(script, extra environment): references to parameters without an environment name of
    their own point at `TIDEFLOW_PARAM_<n>` variables, given in the extra environment."""
    extra: dict[str, str] = {}
    names: dict[str, str] = {}

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params or env_name(name):
            return m.group(0)
        if name not in names:
            names[name] = f"{PARAM_ENV_PREFIX}{len(names)}"
            extra[names[name]] = params[name]
        return "${" + names[name] + "}"

    return REF.sub(one, times(script, params)), extra


def python_literal(value: str) -> str:
    """A Python expression for `value` made of digits, commas and two names only."""
    data = value.encode("utf-8", errors="surrogatepass")
    return f"bytes(({', '.join(str(b) for b in data)}{',' if len(data) == 1 else ''})).decode()"


def python(script: str, params: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        return m.group(0) if value is None else python_literal(value)

    return REF.sub(one, times(script, params))


def sql(statement: str, params: Mapping[str, str]) -> tuple[str, list[str]]:
    """(statement with `%s` placeholders, values to bind in order)."""
    values: list[str] = []
    out: list[str] = []
    text = times(statement, params)
    pos = 0
    for m in REF.finditer(text):
        value = params.get(m.group(1))
        if value is None:
            continue
        out.append(text[pos : m.start()].replace("%", "%%"))
        out.append("%s")
        values.append(value)
        pos = m.end()
    if not values:
        return text, []  # nothing bound: the driver reads the statement as written
    out.append(text[pos:].replace("%", "%%"))
    return "".join(out), values


def text(template: str, params: Mapping[str, str]) -> str:
    """`template` with values pasted in (for text that is data: an HTTP body, a header)."""

    def one(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        return m.group(0) if value is None else value

    return REF.sub(one, times(template, params))


def url(template: str, params: Mapping[str, str]) -> str:
    """`template` with values percent-encoded in: a value cannot add a path segment, a query
    parameter or change the host."""

    def one(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        return m.group(0) if value is None else quote(value, safe="")

    return REF.sub(one, times(template, params))
