"""Loading configuration files and reporting their problems as `<file>: <key>: <problem>`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; names the file, the key and the problem.

    `key` is a dotted path such as ``pipelines.default.stages[2].probability``, ``line 7`` for
    TOML syntax errors, or ``""`` when the problem concerns the whole file.
    """

    def __init__(self, file: str, key: str, problem: str, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        self.line = line
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


class KeyedValueError(ValueError):
    """Raised inside a pydantic validator when the problem lies under a sub-key of the value.

    `config_error_from_validation` appends `path` to the location pydantic reports.
    """

    def __init__(self, path: Loc, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{format_key(path)}: {problem}" if path else problem)


def format_key(loc: Sequence[str | int]) -> str:
    """`("pipelines", "default", "stages", 2)` -> `pipelines.default.stages[2]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
        out += f".{name}" if out else name
    return out


def display_name(path: str | os.PathLike[str] | Traversable) -> str:
    if isinstance(path, str | os.PathLike):
        return os.fspath(path)
    return f"<package data>/{path.name}"


def load_toml(
    path: str | os.PathLike[str] | Traversable, file: str | None = None
) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable or malformed file raises `ConfigFileError`.

    `file` overrides the name used in error messages (default: the path).
    """
    file = file or display_name(path)
    source = Path(path) if isinstance(path, str | os.PathLike) else path
    try:
        text = source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigFileError(file, "", "file not found") from None
    except OSError as exc:
        raise ConfigFileError(file, "", f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(file, "", f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(file, text, exc) from None


def _syntax_error(file: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigFileError:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is None:
        return ConfigFileError(file, "", f"TOML syntax error: {message}")
    problem = message[: match.start()]
    if match.group(1) is None:  # "at end of document"
        line = text.count("\n") + (0 if text.endswith("\n") else 1)
        return ConfigFileError(file, f"line {line}", f"TOML syntax error: {problem}", line)
    line = int(match.group(1))
    return ConfigFileError(
        file, f"line {line}", f"TOML syntax error: {problem} (column {match.group(2)})", line
    )


def check_table_keys(
    file: str, data: Mapping[str, Any], table: str, allowed: Sequence[str]
) -> None:
    """Reject unknown keys inside the top-level `[table]`; pydantic cannot see them when its
    fields are read through alias paths. A missing table is left for pydantic to report."""
    value = data.get(table)
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigFileError(file, table, "must be a table")
    for key in value:
        if key not in allowed:
            raise ConfigFileError(
                file, format_key((table, key)), f"unknown key (allowed: {', '.join(allowed)})"
            )


def config_error_from_validation(file: str, exc: ValidationError) -> ConfigFileError:
    """The first problem of a pydantic `ValidationError`, as a `ConfigFileError`."""
    errors = exc.errors()
    if not errors:
        return ConfigFileError(file, "", str(exc))
    first = errors[0]
    loc: Loc = tuple(first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):
        return ConfigFileError(file, format_key(loc + cause.path), cause.problem)
    if isinstance(cause, ValueError):
        return ConfigFileError(file, format_key(loc), str(cause))
    return ConfigFileError(file, format_key(loc), _problem(first))


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"unknown value {error['input']!r}, must be one of {expected}"
    message = error["msg"]
    if message.startswith("Input should be"):
        return "must be" + message.removeprefix("Input should be")
    return message
