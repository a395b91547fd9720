"""OUT values a SHELL or PYTHON task prints: DolphinScheduler's `${setValue(name=value)}` and
`#{setValue(name=value)}` on stdout (pure; fed the output as it is read, so values printed
before the kept 8 KB tail still count).

A marker may span lines (a value with newlines) up to `MAX_LINES` lines; the first `=`
separates the name from the value; a later marker for the same name wins. What a task prints
is only a claim: the master keeps the names the task declares OUT and the values the rule
allows (`streams.core.task_params.out_param_problem`).
"""

from __future__ import annotations

import re
from typing import Final

MAX_LINES: Final = 1024  # lines one marker may span (DolphinScheduler's limit)
MAX_VALUES: Final = 256  # distinct names kept from one attempt
_START: Final = re.compile(r"[$#]\{setValue\(")
_END: Final = ")}"


class OutParamScanner:
    """Collects `setValue` markers from text fed in pieces, in order."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._line = ""  # the current incomplete line
        self._open: list[str] | None = None  # lines of a marker not yet closed

    def feed(self, text: str) -> None:
        self._line += text
        *lines, self._line = self._line.split("\n")
        for line in lines:
            self._take(line)

    def finish(self) -> dict[str, str]:
        if self._line:
            self._take(self._line)
            self._line = ""
        return dict(self.values)

    def _take(self, line: str) -> None:
        if self._open is not None:
            self._open.append(line)
            if _END in line:
                self._scan("\n".join(self._open))
                self._open = None
            elif len(self._open) >= MAX_LINES:
                self._open = None  # never closed within the limit: dropped
            return
        m = _START.search(line)
        if m is None:
            return
        if _END in line[m.end() :]:
            self._scan(line)
        else:
            self._open = [line]

    def _scan(self, text: str) -> None:
        pos = 0
        while (m := _START.search(text, pos)) is not None:
            end = text.find(_END, m.end())
            if end < 0:
                return
            body = text[m.end() : end]
            pos = end + len(_END)
            name, eq, value = body.partition("=")
            name = name.strip()
            if eq and name and (name in self.values or len(self.values) < MAX_VALUES):
                self.values[name] = value


def scan(text: str) -> dict[str, str]:
    """Every `setValue` marker in `text`."""
    scanner = OutParamScanner()
    scanner.feed(text)
    return scanner.finish()
