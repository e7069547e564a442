"""Subcommands: placeholder until its module is written."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this module's subcommands."""
