"""The parameters one attempt runs with, fully resolved (pure; no clock: the base time is
the instance's schedule time, else its start time, handed in).

Precedence, lowest first, as DolphinScheduler 3.2's code applies it (its documentation
states the same order, highest first): built-ins < global < upstream varPool < local IN <
startup; `system.*` names are the built-ins' alone (no other scope may declare them), so
`system.datetime` is always the base time. The upstream varPool merges the OUT values of the
task's direct upstream tasks, ordered by end time, the later finisher winning (3.2's code;
its documentation says the earliest wins: the code is what users' workflows run on today),
and never values of unrelated branches.

Each value is then expanded: `${name}` references to other parameters (chains followed, at
most `_DEPTH` deep, a cycle or an unknown name left as written) and `$[...]` time
expressions (`streams.core.time_expr`). Expansion pastes text into text: the values are data,
and whether a value reaches a script as data is `streams.core.render`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from streams.core.params import VALUE_LIMIT
from streams.core.task_params import Direct, ParamDef
from streams.core.time_expr import TimeExprError, evaluate, format_java

# `-` for `<task>.response` (task codes may hold it); bash's `${a-b}` matches only when a
# parameter is named `a-b`, which no declaration may be.
REF: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
TIME: Final = re.compile(r"\$\[([^\[\]]*)\]")
DATETIME: Final = "system.datetime"
_DATETIME_FORMAT: Final = "yyyyMMddHHmmss"
_DEPTH: Final = 8


def builtins(
    base: datetime, *, instance_id: str, workflow_code: str, task_code: str, task_instance: str
) -> dict[str, str]:
    """DolphinScheduler's built-in parameters for one attempt."""
    return {
        DATETIME: format_java(_DATETIME_FORMAT, base),
        "system.biz.date": format_java("yyyyMMdd", base - timedelta(days=1)),
        "system.biz.curdate": format_java("yyyyMMdd", base),
        "system.workflow.instance.id": instance_id,
        "system.workflow.definition.code": workflow_code,
        "system.workflow.definition.name": workflow_code,
        "system.task.definition.code": task_code,
        "system.task.definition.name": task_code,
        "system.task.instance.id": task_instance,
    }


def base_time(params: Mapping[str, str]) -> datetime | None:
    """The base time a resolved parameter set was made with (`system.datetime`)."""
    raw = params.get(DATETIME)
    if raw is None or len(raw) != 14 or not raw.isdigit():
        return None
    return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def upstream_pool(finished: Iterable[tuple[datetime | None, Mapping[str, str]]]) -> dict[str, str]:
    """Direct upstream tasks' OUT values, merged in end-time order (the later one wins)."""
    pool: dict[str, str] = {}
    for _, values in sorted(finished, key=lambda f: (f[0] is not None, f[0] or 0)):
        pool.update(values)
    return pool


def resolve(
    *,
    builtin: Mapping[str, str],
    global_params: Iterable[ParamDef],
    upstream: Mapping[str, str],
    local: Iterable[ParamDef],
    startup: Mapping[str, str],
) -> dict[str, str]:
    """Every parameter of one attempt, merged by precedence and expanded."""
    merged: dict[str, str] = {}
    merged.update({p.name: p.value for p in global_params})
    merged.update(upstream)
    merged.update({p.name: p.value for p in local if p.direct is Direct.IN})
    merged.update(startup)
    merged.update(builtin)  # system.* cannot be declared elsewhere: this only re-asserts them
    base = base_time(builtin)
    return {name: expand(value, merged, base) for name, value in merged.items()}


def expand(text: str, params: Mapping[str, str], base: datetime | None) -> str:
    """`text` with `${name}` references and `$[...]` time expressions replaced by values."""
    out = _refs(text, params, _DEPTH)
    return _times(out, base) if base is not None else out


def _refs(text: str, params: Mapping[str, str], depth: int) -> str:
    if depth == 0 or "${" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        return m.group(0) if value is None else _refs(value, params, depth - 1)

    out = REF.sub(one, text)
    return out if len(out.encode("utf-8", errors="surrogatepass")) <= VALUE_LIMIT else text


def _times(text: str, base: datetime) -> str:
    if "$[" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        try:
            return evaluate(m.group(1), base)
        except TimeExprError:
            return m.group(0)

    return TIME.sub(one, text)
