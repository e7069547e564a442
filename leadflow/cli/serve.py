"""``leadflow serve`` (the HTTP API) and ``leadflow api-key create | list | revoke``."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.api_keys import ROLES, ApiKey, ApiKeyError, ApiKeys
from adapters.settings import Settings
from leadflow.api.server import serve
from leadflow.bootstrap import open_store_db
from leadflow.cli.tables import render_table
from leadflow.errors import CliError


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API (OpenAPI at /openapi.json, docs at /docs)",
        description="Serve the HTTP API on the configured store (LEADFLOW_* settings; "
        "LEADFLOW_API_* for body size and rate limits). Clients authenticate with an API "
        "key: leadflow api-key create.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=_port, default=8080, help="default: 8080")
    parser.set_defaults(handler=serve_command)

    keys = subparsers.add_parser("api-key", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print its token once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="the actor recorded on its events")
    create.set_defaults(handler=create_key)
    listing = actions.add_parser("list", help="list keys (never their tokens)")
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("key", metavar="NAME_OR_ID")
    revoke.set_defaults(handler=revoke_key)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    serve(settings, args.host, args.port)
    return 0


def _keys_call(settings: Settings, action: Any) -> Any:
    with open_store_db(settings) as db:
        try:
            return action(ApiKeys(db))
        except ApiKeyError as error:
            raise CliError(str(error)) from None


def create_key(args: argparse.Namespace, settings: Settings) -> int:
    key, token = _keys_call(settings, lambda keys: keys.create(args.name, args.role))
    print(f"created API key {key.name!r} (role {key.role}, id {key.key_id})")
    print(f"token (shown once, store it now): {token}")
    return 0


def list_keys(args: argparse.Namespace, settings: Settings) -> int:
    found: list[ApiKey] = _keys_call(settings, lambda keys: keys.list())
    rows = [
        [
            k.key_id,
            k.name,
            k.role,
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
        ]
        for k in found
    ]
    print(render_table(["id", "name", "role", "created", "revoked"], rows))
    return 0


def revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    key = _keys_call(settings, lambda keys: keys.revoke(args.key))
    print(f"revoked API key {key.name!r} (id {key.key_id})")
    return 0
