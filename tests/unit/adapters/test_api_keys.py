"""API keys on SQLite and PostgreSQL: only the token's hash stored, names unique among
active keys, revocation, and the checks on names and roles."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from adapters.api_keys import ApiKeyError, ApiKeys, token_hash
from adapters.store_db import StoreDb
from tests.settings_helpers import settings_with


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> StoreDb:
    if request.param == "sqlite":
        settings = settings_with(data_dir=tmp_path)
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        schema = f"keys_{uuid.uuid4().hex[:12]}"
        settings = settings_with(data_dir=tmp_path, postgres_dsn=dsn, postgres_schema=schema)
    store = StoreDb(settings.store)
    request.addfinalizer(store.close)
    return store


def test_a_token_authenticates_its_key_and_only_its_hash_is_stored(db: StoreDb) -> None:
    keys = ApiKeys(db)
    key, token = keys.create("crm-sync", "sales")
    assert token.startswith("lf_") and len(token) > 40
    assert keys.authenticate(token) == key
    assert keys.authenticate(token + "x") is None
    stored = db.execute("SELECT token_hash FROM {keys}", keys="leadflow_api_keys")
    assert stored == [(token_hash(token),)]
    assert all(
        token not in str(v)
        for row in db.execute("SELECT * FROM {k}", k="leadflow_api_keys")
        for v in row
    )


def test_a_revoked_key_no_longer_authenticates_and_frees_its_name(db: StoreDb) -> None:
    keys = ApiKeys(db)
    key, token = keys.create("dashboard", "manager")
    with pytest.raises(ApiKeyError, match="already named 'dashboard'"):
        keys.create("dashboard", "auditor")
    revoked = keys.revoke("dashboard")
    assert revoked.revoked_at is not None and revoked.key_id == key.key_id
    assert keys.authenticate(token) is None
    again, _ = keys.create("dashboard", "manager")
    assert [k.active for k in keys.list()] == [False, True]
    keys.revoke(again.key_id)
    with pytest.raises(ApiKeyError, match="no active API key"):
        keys.revoke("dashboard")


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("ok", "root", "unknown role 'root'; roles: marketing, sales, manager, auditor, admin"),
        ("", "sales", "give 1 to 100 printable characters"),
        ("a\x00b", "sales", "give 1 to 100 printable characters"),
        ("x" * 101, "sales", "give 1 to 100 printable characters"),
    ],
)
def test_bad_names_and_roles_are_refused(db: StoreDb, name: str, role: str, message: str) -> None:
    with pytest.raises(ApiKeyError, match=message):
        ApiKeys(db).create(name, role)
