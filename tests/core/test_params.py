"""The parameter rule: names that would let a parameter run code are refused, by the rule
itself and by the start decision (`INVALID_PARAMS`), which leaves no instance behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.events import TaskDispatched, WorkflowStarted
from streams.core.params import NAME_LIMIT, VALUE_LIMIT, name_problem, param_problems
from streams.core.rejections import Reason
from tests.core.builders import NOW, W1, applied, chain, empty, rejection, start, types

# Each name would change what runs around a task's own command (see streams/core/params.py).
ATTACKS = [
    "BASH_ENV",
    "BASH_FUNC_echo%%",
    "BASH_FUNC_ls",
    "BASHOPTS",
    "BASH_XTRACEFD",
    "ENV",
    "SHELLOPTS",
    "PS4",
    "IFS",
    "PROMPT_COMMAND",
    "CDPATH",
    "GLOBIGNORE",
    "PATH",
    "HOME",
    "SHELL",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "DYLD_INSERT_LIBRARIES",
    "GCONV_PATH",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GIT_SSH_COMMAND",
    "PAGER",
    "TIDEFLOW_INSTANCE_ID",
    "TIDEFLOW_ATTEMPT",
    "TIDEFLOW_ANYTHING",
]
MALFORMED = ["", "1day", "day-of", "a b", "a=b", "x\ny", "région", "a" * (NAME_LIMIT + 1)]
ALLOWED = ["day", "env", "path", "home", "DAY", "_private", "a1", "CHAOS_DIR", "a" * NAME_LIMIT]


@pytest.mark.parametrize("name", ATTACKS)
def test_a_name_the_shell_loader_interpreters_or_worker_read_is_refused(name: str) -> None:
    problems = param_problems({"day": "1", name: "$(touch /tmp/pwned)"})

    assert len(problems) == 1
    assert problems[0].startswith("expected parameter names ")
    assert problems[0].endswith(f"found {name!r}")


@pytest.mark.parametrize("name", MALFORMED)
def test_a_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    problem = name_problem(name)

    assert problem is not None
    assert "letters, digits and _" in problem


@pytest.mark.parametrize("name", ALLOWED)
def test_an_ordinary_name_is_allowed_whatever_its_value_says(name: str) -> None:
    assert param_problems({name: "$(rm -rf /); `id` && echo ';' \"'\n"}) == ()


def test_a_value_with_a_nul_or_over_the_limit_is_refused_and_at_the_limit_allowed() -> None:
    problems = param_problems(
        {"nul": "a\x00b", "big": "é" * (VALUE_LIMIT // 2 + 1), "full": "x" * VALUE_LIMIT}
    )

    assert problems == (
        "expected parameter 'nul' without NUL characters, found one",
        f"expected parameter 'big' at most {VALUE_LIMIT} bytes, found {VALUE_LIMIT + 2}",
    )


def test_every_refused_parameter_is_named_and_a_huge_name_is_quoted_short() -> None:
    problems = param_problems({"PATH": "/tmp", "LD_PRELOAD": "x.so", "B" * 10_000: "1"})

    assert [p.rsplit("found ", 1)[1] for p in problems[:2]] == ["'PATH'", "'LD_PRELOAD'"]
    assert len(problems[2]) < 300


def test_start_with_a_reserved_parameter_is_rejected_invalid_params_naming_it() -> None:
    command = replace(start(chain("a")), params={"day": "1", "BASH_ENV": "$(touch /tmp/x)"})

    refused = rejection(decide(empty(), command, NOW, W1))

    assert refused.reason is Reason.INVALID_PARAMS
    assert refused.message.endswith("found 'BASH_ENV'")
    assert refused.command_id == "start-1"


def test_start_rejected_invalid_params_leaves_no_instance_and_a_fixed_start_runs() -> None:
    bad = replace(start(chain("a")), params={"PATH": "/tmp/evil"})
    state = applied(empty(), decide(empty(), bad, NOW, W1))
    assert not state.exists

    fixed = replace(start(chain("a"), command_id="start-2"), params={"path": "/tmp/data"})
    then = decide(state, fixed, NOW, W1)

    assert types(then) == [WorkflowStarted, TaskDispatched]
