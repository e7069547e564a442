"""The CLI subcommands refuse an actor or a command id holding a character that would
rewrite the terminal line, in one line naming the option and the code point."""

from __future__ import annotations

import pytest

from tests.e2e.cli.conftest import Cli


@pytest.mark.parametrize(
    ("option", "value", "code_point"),
    [
        ("--actor", "sdr\u202ereversed", "U+202E"),
        ("--actor", "sdr\u009b2J", "U+009B"),
        ("--command-id", "cmd\u2028next", "U+2028"),
        ("--command-id", "cmd\u00ad1", "U+00AD"),
    ],
)
def test_an_invisible_character_in_actor_or_command_id_is_one_line_without_it(
    cli: Cli, option: str, value: str, code_point: str
) -> None:
    run = cli("capture-lead", "ada@example.com", "--source", "web", option, value)

    assert run.code == 1
    [message] = run.messages
    assert message.startswith(f"leadflow capture-lead: {option}: ")
    assert code_point in message
    assert value[3] not in run.err
    assert cli("lead", "show", "ada@example.com").code == 1  # nothing was captured
