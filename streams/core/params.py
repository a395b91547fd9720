"""The rule a startup parameter must follow before it may reach a task (pure; no I/O).

A SHELL task gets its instance's parameters as environment variables of `bash -c`, so a
parameter's name decides which variable it sets. Some variables are code, not data: bash runs
the file named by `BASH_ENV` (and expands it: `BASH_ENV='$(cmd)'` runs `cmd`) before every
command, imports `BASH_FUNC_name%%` as a function that shadows a command, obeys `SHELLOPTS` /
`PS4` / `IFS`; the dynamic loader loads `LD_PRELOAD`; Python, Perl, Ruby, Node and Java run
what `PYTHONSTARTUP`, `PERL5OPT`, `RUBYOPT`, `NODE_OPTIONS`, `JAVA_TOOL_OPTIONS` say; `PATH`
decides which program a name runs. A parameter must never set one of them, nor one of the
`TIDEFLOW_*` variables the worker sets itself.

Decision: **refuse, not namespace.** A parameter keeps its name in the task (`-p day=...` is
`$day`, as DolphinScheduler users write it); renaming every parameter (`TIDEFLOW_PARAM_day`)
would break every script to protect against names nobody legitimately uses as a parameter. A
refusal is loud: the API answers 422, the CLI exits 2, and a `StartWorkflow` written by any
other producer ends as `CommandRejected(INVALID_PARAMS)`, so the sender learns at once instead
of a task silently missing a value. The worker applies the same rule again to what a dispatch
record brings (defence in depth: a record written by someone else) and drops what breaks it.

The reserved list is necessarily a deny-list (a task may run any program, and some program
somewhere reads any name); it covers what runs before or around every task's own command:
bash and POSIX `sh` (`BASH*` covers `BASH_ENV`, `BASH_FUNC_*`, `BASHOPTS`, `BASH_XTRACEFD`,
`BASH_LOADABLES_PATH`), the glibc / macOS dynamic loader and `GCONV_PATH` (iconv loads its
modules), the interpreters a task script most often starts, git's and ssh's command hooks,
and the process basics `PATH` / `HOME` / `SHELL` / `TMPDIR`. Names are compared as written:
environment names are case-sensitive on the workers (Linux), and a parameter named `env` or
`path` is a common, harmless one (bash reads only `ENV` and `PATH`). Beyond the list, a name
must be a plain shell identifier (bash cannot reference anything else, and `BASH_FUNC_x%%`
needs the `%`), and a value is bounded and holds no NUL (an environment string cannot).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

NAME_LIMIT: Final = 128  # characters of a parameter name
VALUE_LIMIT: Final = 64 * 1024  # UTF-8 bytes of a parameter value (Linux allows 128 KiB each)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

RESERVED_NAMES: Final = frozenset(
    {
        # POSIX sh / bash: startup files, options, word splitting, prompts, lookup paths
        "ENV",
        "SHELLOPTS",
        "IFS",
        "PS0",
        "PS1",
        "PS2",
        "PS3",
        "PS4",
        "PROMPT_COMMAND",
        "CDPATH",
        "GLOBIGNORE",
        "EXECIGNORE",
        "FPATH",
        "POSIXLY_CORRECT",
        "INPUTRC",
        "HISTFILE",
        # the process basics: which program a name runs, where `~`, temp files and $SHELL go
        "PATH",
        "HOME",
        "SHELL",
        "TMPDIR",
        # glibc iconv loads the shared objects GCONV_PATH names
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        # interpreters a task script starts
        "PERLLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        # programs that run a command the environment names
        "EDITOR",
        "VISUAL",
        "PAGER",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
    }
)
RESERVED_PREFIXES: Final = (
    "BASH",  # BASH_ENV, BASH_FUNC_name%%, BASHOPTS, BASH_XTRACEFD, BASH_LOADABLES_PATH, ...
    "LD_",  # LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT: the dynamic loader
    "DYLD_",  # macOS's loader
    "PYTHON",  # PYTHONSTARTUP, PYTHONPATH, PYTHONHOME, PYTHONINSPECT, ...
    "PERL5",  # PERL5OPT, PERL5LIB, PERL5DB
    "PERL_",
    "RUBY",  # RUBYOPT, RUBYLIB
    "NODE_",  # NODE_OPTIONS, NODE_PATH
    "GIT_",  # GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*, ...
    "TIDEFLOW_",  # the worker's own: TIDEFLOW_INSTANCE_ID, _TASK_CODE, _ATTEMPT, its settings
)
_SHOWN: Final = 80  # characters of a refused name quoted back in a message


def name_problem(name: str) -> str | None:
    """Why `name` may not name a parameter, or None if it may."""
    shown = repr(name[:_SHOWN] + ("..." if len(name) > _SHOWN else ""))
    if len(name) > NAME_LIMIT or not _NAME.fullmatch(name):
        return (
            "expected parameter names of letters, digits and _, not starting with a digit, "
            f"at most {NAME_LIMIT} characters, found {shown}"
        )
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        return (
            "expected parameter names the shell, the loader, interpreters and the worker do not "
            f"read (not PATH, ENV, IFS, BASH*, LD_*, PYTHON*, TIDEFLOW_*, ...), found {shown}"
        )
    return None


def param_problem(name: str, value: str) -> str | None:
    """Why the parameter `name=value` may not reach a task, or None if it may."""
    problem = name_problem(name)
    if problem is not None:
        return problem
    if "\x00" in value:
        return f"expected parameter {name!r} without NUL characters, found one"
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > VALUE_LIMIT:
        return f"expected parameter {name!r} at most {VALUE_LIMIT} bytes, found {size}"
    return None


def param_problems(params: Mapping[str, str]) -> tuple[str, ...]:
    """Every reason the startup parameters `params` may not reach a task (empty: they may).

    Args:
        params: parameter names to values, as a `StartWorkflow` carries them.

    Returns:
        One message per refused parameter, in the mapping's order.
    """
    found = (param_problem(name, value) for name, value in params.items())
    return tuple(p for p in found if p is not None)
