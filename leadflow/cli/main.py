"""Entry point: ``leadflow <subcommand>``. Failures print one line and exit non-zero."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import structlog
from pydantic import ValidationError

from adapters.event_store import StoreSettingsError
from adapters.logging import configure_logging
from adapters.mapper import StoredEventError
from adapters.settings import Settings
from adapters.store_integrity import StoreTampered
from domain.config_file import ConfigFileError
from domain.errors import DamagedHistory, DomainError
from leadflow.bootstrap import RetiredSetting, load_settings
from leadflow.cli.terminal import safe_output
from leadflow.errors import CliError

# Each module has ``register(subparsers)``; its subcommands set ``handler(args, settings)``.
COMMAND_MODULES = (
    "leadflow.cli.lead_commands",
    "leadflow.cli.stream",
    "leadflow.cli.reports",
    "leadflow.cli.audit",
    "leadflow.cli.audit_keys",
    "leadflow.cli.demo",
    "leadflow.cli.serve",
    "leadflow.cli.privacy",
)

log = structlog.get_logger("leadflow.cli")

EXIT_STORE_DAMAGED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadflow",
        description="Event-sourced lead lifecycle engine. Configuration: LEADFLOW_* variables.",
    )
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return f"invalid {error.title}: {where}: {first['msg']}"
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except (ValidationError, RetiredSetting) as error:
        print(f"leadflow: configuration: {_one_line(error)}", file=sys.stderr)
        return 2
    with safe_output():
        configure_logging(settings.log.level, settings.log.format)
        return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        code = int(args.handler(args, settings) or 0)
        sys.stdout.flush()  # here, so a closed pipe is seen inside the try
        return code
    except BrokenPipeError:  # the reader went away (`leadflow pipeline | head`): not an error
        _silence_stdout()
        return 0
    except (
        CliError,
        DomainError,
        ConfigFileError,
        StoreSettingsError,
        ValidationError,
        OSError,
    ) as error:
        print(f"leadflow {args.subcommand}: {_one_line(error)}", file=sys.stderr)
        return 1
    except (StoredEventError, StoreTampered, DamagedHistory) as error:  # a damaged store
        print(f"leadflow {args.subcommand}: {_one_line(error)}", file=sys.stderr)
        return EXIT_STORE_DAMAGED
    except KeyboardInterrupt:
        print(f"leadflow {args.subcommand}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # last line of defence: one line, no traceback
        log.debug("unexpected_error", subcommand=args.subcommand, exc_info=True)
        print(
            f"leadflow {args.subcommand}: unexpected {type(error).__name__}: {_one_line(error)} "
            "(set LEADFLOW_LOG_LEVEL=debug for details)",
            file=sys.stderr,
        )
        return 1


def _silence_stdout() -> None:
    """Python would report the pipe again when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
