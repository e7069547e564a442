"""The composition root: every process and command of leadflow is built here, from one
``Settings``. Only ``load_settings`` reads the environment; everything below receives
the values it needs (a DSN and schema, a topic, a section such as ``KafkaSettings``)."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from pathlib import Path

import psycopg
import structlog
from eventsourcing.persistence import OperationalError as StoreOperationalError

from adapters.audit_config import audit_config
from adapters.audit_keys import load_audit_key
from adapters.audit_log import SignedHead
from adapters.audit_rotation import Rotation, key_ring, read_rotations, rotate
from adapters.audit_topic import latest_head_on_topic
from adapters.audit_witness import FileWitness, WitnessError
from adapters.command_ledger import attach_audit, chain_existing_events
from adapters.erased_rows import StoreErasure
from adapters.event_store import StoreSettingsError, event_store_env, postgres_ddl_lock
from adapters.lead_index import StoredLeadIndex, create_lead_index_table
from adapters.lead_keys import WRAPPING_KEY_LABEL, LeadKeys, create_lead_keys_table
from adapters.logging import configure_logging, error_text
from adapters.personal_seal import PersonalSeal
from adapters.privacy_keys import KEY_SETTING as MASTER_KEY_SETTING
from adapters.privacy_keys import MasterKey, master_key
from adapters.retrying import retry_while_unavailable
from adapters.settings import Settings
from adapters.stopping import ProcessStop
from adapters.store_db import StoreDb
from adapters.store_integrity import (
    StoreTampered,
    WantedIds,
    check_store_integrity,
    record_log_chained,
)
from adapters.stream_settings import StreamSettings
from consumers.ingest.consumer import EngagementIngest
from consumers.ingest.ledger import TABLE as INGEST_RECORDS
from consumers.projection import runner
from consumers.projection.runner import RebuildSource
from consumers.relay.lock import FileRelayLock, PostgresRelayLock, RelayLock
from consumers.relay.publisher import Relay
from consumers.relay.reader_process import ReaderProcess
from consumers.relay.wakeup import NewEventsSignal, Polling, PostgresListener
from domain.scoring import load_scoring_rules
from domain.stage_model import load_stage_model
from projections.erased_facts import erase_personal_facts
from projections.log_verify import LogProblem, LogVerification, verify_log
from projections.store import ReadModelStore, open_read_model_store
from service import erasure
from service.application import LeadflowApp
from service.erasure import Erasure
from service.ids import ID_KEY_LABEL, IdScheme, KeyedIds, Uuid5Ids
from service.indexed_ids import LEAD_INDEX_KEY_LABEL, IndexedIds
from service.snapshot_seal import LOCAL_SEAL_LABEL

log = structlog.get_logger("leadflow.bootstrap")


RETIRED_SETTINGS = {
    "LEADFLOW_KAFKA_RETENTION_MS": "LEADFLOW_KAFKA_{EVENTS,QUALIFICATION,ENGAGEMENT,"
    "DEAD_LETTER}_RETENTION_MS (one per topic)",
}


class RetiredSetting(ValueError):
    """A variable an older leadflow read: set, it would be ignored without a word."""


def load_settings() -> Settings:
    """The settings from the ``LEADFLOW_*`` environment: the one place that reads it."""
    for name, instead in RETIRED_SETTINGS.items():
        if name in os.environ:
            msg = f"{name} is no longer read; set {instead} instead"
            raise RetiredSetting(msg)
    return Settings()


# --- stores -------------------------------------------------------------------------------


def open_application(settings: Settings, default_actor: str = "leadflow") -> LeadflowApp:
    """The application on the configured event store (its tables created if missing),
    refused (StoreSettingsError) when the settings disagree with the store's recorded
    integrity settings."""
    store = settings.store
    if store.dsn is None:
        app = _construct(settings, default_actor)
    else:
        with postgres_ddl_lock(store.dsn, store.postgres_schema):
            app = _construct(settings, default_actor)
    _tune_garbage_collector()
    return app


GC_YOUNG_THRESHOLD = 20_000


@functools.cache
def _tune_garbage_collector() -> None:
    """Once per process. What start-up loaded (modules, pydantic schemas) leaves the
    cyclic garbage collector's sight, so its full collections stop scanning it again and
    again; and it runs after 20,000 new containers, not 700: a command creates hundreds
    (events, models, dicts), nearly all freed by reference counting. Together they took
    the collector from about 16 to 1 µs of CPU per command (docs/performance.md)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def privacy_master_key(settings: Settings) -> MasterKey:
    """The configured privacy master key, or the data directory's (created on first use)."""
    return master_key(settings.privacy.master_key_file, settings.store.data_dir)


def keyed_ids(master: MasterKey) -> KeyedIds:
    """The keyed id scheme under ``master`` (deal ids; lead ids of a store that records it)."""
    return KeyedIds(master.derive(ID_KEY_LABEL))


def _construct(settings: Settings, default_actor: str) -> LeadflowApp:
    store = settings.store
    audit = audit_config(settings.audit, store.data_dir)
    master = privacy_master_key(settings)
    keyed = keyed_ids(master)
    app = LeadflowApp(
        event_store_env(store),
        stage_model=load_stage_model(store.stage_model_file),
        scoring_rules=load_scoring_rules(store.scoring_rules_file),
        snapshot_interval=store.snapshot_interval,
        default_actor=default_actor,
        ids=keyed,
    )
    try:
        # settings that disagree with the store are refused before anything is written
        audit_key_id = None if audit.key is None else audit.key.key_id
        recorded = check_store_integrity(
            store,
            app.recorder,
            app.mapper.cipher,
            audit_key_id,
            audit_key_verifies_only=audit.key is not None and audit.key.private is None,
            ids=_wanted_ids(settings, master),
        )
        with StoreDb(store) as db:
            create_lead_keys_table(db)
            create_lead_index_table(db)
        app.ids = _id_scheme(recorded.id_scheme, keyed, lambda: _indexed_ids(app, settings, master))
        keys = LeadKeys(store, master.derive(WRAPPING_KEY_LABEL))
        app.on_close(keys.close)
        app.seal_personal_data(PersonalSeal(keys))
        attach_audit(app.recorder, audit)
        app.seal_snapshots_locally(master.derive(LOCAL_SEAL_LABEL))
        chained = chain_existing_events(
            app.recorder, lambda: _refuse_backfill(settings, recorded.log_chained_at)
        )
        if chained:
            log.info("log_chain_backfilled", events=chained, store=store.data_dir.name)
        if recorded.log_chained_at is None:
            record_log_chained(store)
    except BaseException:
        app.close()
        raise
    return app


def _refuse_backfill(settings: Settings, chained_at: str | None) -> None:
    """A store with events and no log chain is chained anew only when nothing shows it was
    chained before: else its chain, heads and snapshots were emptied, perhaps to have the
    next write sign edited events."""
    evidence = _chained_before(settings, chained_at)
    if evidence is None:
        return
    msg = (
        f"the event store holds events but no log chain and no signed head, while {evidence}: "
        "they were deleted outside leadflow; its events are not chained again (that would "
        "sign whatever they hold now): restore the store from a backup"
    )
    raise StoreTampered(msg)


def _chained_before(settings: Settings, chained_at: str | None) -> str | None:
    """What shows that the store's log chain was started (None: nothing does)."""
    if chained_at is not None:
        return f"the store records that its log chain was started at {chained_at}"
    witness = audit_config(settings.audit, settings.store.data_dir).witness
    if isinstance(witness, FileWitness) and (heads := witness.read().heads):
        return f"the witness {witness.path} holds {len(heads)} signed heads"
    topic = settings.audit.topic
    if not settings.kafka_mode or settings.audit.key_file is None:
        return None
    try:
        head = latest_head_on_topic(settings.kafka, topic)
    except WitnessError as error:  # something was published there
        return f"the audit topic holds records ({error})"
    if head is None:
        return None
    return f"the audit topic {topic} holds a signed head at notification {head.position}"


def _wanted_ids(settings: Settings, master: MasterKey) -> WantedIds:
    source = str(master.source)
    if settings.privacy.master_key_file is None:
        source += f" ({MASTER_KEY_SETTING} is not set)"
    return WantedIds(
        IndexedIds.name, Uuid5Ids.name, master.check_value, source, keyed_scheme=KeyedIds.name
    )


def _indexed_ids(app: LeadflowApp, settings: Settings, master: MasterKey) -> IndexedIds:
    """Random lead ids in the store's keyed index; deal ids keyed (``keyed_ids``)."""
    index = StoredLeadIndex(settings.store)
    app.on_close(index.close)
    return IndexedIds(master.derive(LEAD_INDEX_KEY_LABEL), index, keyed_ids(master).deal)


def _id_scheme(
    recorded: str | None, keyed: KeyedIds, indexed: Callable[[], IndexedIds]
) -> IdScheme:
    """The id scheme the store records (a store from before keeps its keyed or uuid5 ids)."""
    if recorded == Uuid5Ids.name:
        return Uuid5Ids()
    if recorded == KeyedIds.name:
        return keyed
    if recorded in (None, IndexedIds.name):
        return indexed()
    msg = f"the event store records id scheme {recorded!r}, unknown to this leadflow"
    raise StoreSettingsError(msg)


def forget_lead(settings: Settings, ref: str, reason: str, actor: str) -> Erasure:
    """Erase one lead's personal data (``service.erasure``), and its personal columns
    in the read model (``projections.erased_facts``)."""
    with open_application(settings, default_actor=actor) as app:
        return forget_lead_in(app, settings, ref, reason, actor)


def forget_lead_in(
    app: LeadflowApp, settings: Settings, ref: str, reason: str, actor: str
) -> Erasure:
    """``forget_lead`` with an application already open (``leadflow serve``'s)."""
    personal = app.personal_data
    assert isinstance(personal, PersonalSeal)  # what _construct gives every application
    store = StoreErasure(
        settings.store, personal.keys, app.snapshots_table(), records_table=INGEST_RECORDS
    )
    try:
        erased = erasure.forget_lead(app, store, ref, reason, actor)
    except erasure.AlreadyErased as error:
        _erase_read_model(settings, error.erasure)
        raise
    _erase_read_model(settings, erased)
    return erased


def _erase_read_model(settings: Settings, erased: Erasure) -> None:
    read_model = open_read_model(settings)
    try:
        erase_personal_facts(read_model, erased.lead_id, erased.deal_ids)
    finally:
        read_model.close()


def open_application_patiently(
    settings: Settings, default_actor: str, stop: ProcessStop
) -> LeadflowApp | None:
    """``open_application``, retried with back-off while PostgreSQL is unreachable, so that
    a long-running process started before its database waits for it; None when stopped
    first."""

    def unreachable(error: Exception, retry_in: float) -> None:
        log.warning(
            "event_store_unreachable",
            actor=default_actor,
            error=error_text(error),
            retry_in=retry_in,
        )

    return retry_while_unavailable(
        lambda: open_application(settings, default_actor),
        lambda error: isinstance(error, psycopg.OperationalError | StoreOperationalError),
        stop,
        on_retry=unreachable,
        max_delay=settings.stream.retry_max_seconds,
    )


def open_read_model(settings: Settings) -> ReadModelStore:
    """The live read model, for the configured stage model."""
    return open_read_model_store(settings.store, load_stage_model(settings.store.stage_model_file))


def open_store_db(settings: Settings) -> StoreDb:
    """A connection to the event store's database, for the stream's side tables."""
    return StoreDb(settings.store)


def verify_signed_log(
    settings: Settings, app: LeadflowApp, *, every_signature: bool = True
) -> LogVerification:
    """The event log of ``app`` checked against its signed heads, every head in the
    witness file and the latest head on the audit topic (``projections.log_verify``);
    an unreadable witness is one more problem. ``every_signature=False``: see
    ``verify_log``."""
    audit = audit_config(settings.audit, settings.store.data_dir)
    witnessed: list[tuple[str, SignedHead]] = []
    unreadable: list[str] = []
    if isinstance(audit.witness, FileWitness):
        reading = audit.witness.read()
        witnessed += [(f"witnessed head (line {n})", head) for n, head in reading.heads]
        unreadable += reading.problems
    on_topic = settings.kafka_mode and audit.key is not None
    if on_topic:
        try:
            head = latest_head_on_topic(settings.kafka, settings.audit.topic)
        except WitnessError as error:
            head, unreadable = None, [*unreadable, str(error)]
        witnessed += [(f"head witnessed on {settings.audit.topic}", head)] if head else []
    with open_store_db(settings) as db:
        keys = None if audit.key is None else key_ring(audit.key, read_rotations(db))
        result = verify_log(
            app.recorder,
            db,
            keys,
            witnessed,
            witness_configured=audit.witness is not None or on_topic,
            every_signature=every_signature,
        )
    result.problems[:0] = [LogProblem(text) for text in unreadable]
    return result


def rotate_audit_key(settings: Settings, new_key_file: Path) -> Rotation:
    """Change the store's audit key from the configured one to ``new_key_file``'s (both
    private keys), recorded in the store and signed by both."""
    audit = audit_config(settings.audit, settings.store.data_dir)
    if audit.key is None or audit.key.private is None:
        msg = "LEADFLOW_AUDIT_KEY_FILE must name the store's current private audit key"
        raise StoreSettingsError(msg)
    new = load_audit_key(new_key_file.expanduser())
    if new.private is None:
        raise StoreSettingsError(f"--new-key {new_key_file}: a private key is needed")
    if new.key_id == audit.key.key_id:
        raise StoreSettingsError(f"--new-key {new_key_file} is the current audit key")
    open_application(settings).close()  # the current key must be the store's
    with open_store_db(settings) as db:
        rotation = rotate(db, audit.key, new)
    log.info("audit_key_rotated", old_key_id=audit.key.key_id, new_key_id=new.key_id)
    return rotation


# --- the relay's parts --------------------------------------------------------------------


def relay_lock(settings: Settings) -> RelayLock:
    store = settings.store
    if store.dsn is not None:
        return PostgresRelayLock(store.dsn, store.postgres_schema)
    return FileRelayLock(store.sqlite_event_store.with_name("events.relay.lock"))


def new_events_signal(
    settings: Settings, app: LeadflowApp, poll_interval: float
) -> NewEventsSignal:
    """LISTEN for eventsourcing's NOTIFY on PostgreSQL, short polling on SQLite."""
    channel = getattr(app.recorder, "channel_name", None)
    dsn = settings.store.dsn
    if dsn is None or not isinstance(channel, str):
        return Polling(poll_interval)
    return PostgresListener(dsn, channel, poll_interval)


# --- processes ----------------------------------------------------------------------------


def _open_relay_reader_app(settings: Settings) -> LeadflowApp:
    """The application of the relay's page reader process, logging as the relay does."""
    configure_logging(settings.log.level, settings.log.format)
    return open_application(settings, "relay-reader")


def relay(
    settings: Settings,
    stream: StreamSettings,
    app: LeadflowApp,
    *,
    stop: ProcessStop | None = None,
) -> Relay:
    """The relay from ``app``'s event store to the topics ``stream`` names (its pages read
    by a child process on the same store when ``stream.relay_reader_process``)."""
    pages = None
    if stream.relay_reader_process:
        open_app = functools.partial(_open_relay_reader_app, settings)
        pages = functools.partial(ReaderProcess, open_app, stream, preload=(__name__,))
    return Relay(
        app,
        stream,
        settings.kafka,
        lock=relay_lock(settings),
        open_db=lambda: open_store_db(settings),
        new_events=lambda: new_events_signal(settings, app, stream.relay_poll_seconds),
        stop=stop,
        audit_topic=settings.audit.topic if settings.audit.key_file is not None else None,
        pages=pages,
    )


def engagement_ingest(
    settings: Settings,
    stream: StreamSettings,
    app: LeadflowApp,
    *,
    group: str | None = None,
    stop: ProcessStop | None = None,
) -> EngagementIngest:
    """The engagement ingest from the topics ``stream`` names into ``app``."""
    return EngagementIngest(
        app,
        stream,
        settings.kafka,
        open_db=lambda: open_store_db(settings),
        group=group,
        stop=stop,
    )


def run_projector(
    settings: Settings,
    stop: ProcessStop,
    *,
    follow_log: bool = False,
    until_idle: bool = False,
) -> int:
    """Project into the live read model until ``stop`` (see ``runner.run_projector``)."""
    return runner.run_projector(
        lambda: open_read_model(settings),
        lambda: open_application(settings),
        settings.projector,
        stop,
        kafka=settings.kafka if settings.kafka_mode else None,
        follow_log=follow_log,
        until_idle=until_idle,
    )


def rebuild(settings: Settings, source: RebuildSource, *, max_seconds: float | None = None) -> int:
    """Rebuild the live read model from the event store or the events topic."""
    return runner.rebuild(
        lambda: open_read_model(settings),
        lambda: open_application(settings),
        settings.projector,
        source,
        kafka=settings.kafka,
        max_seconds=max_seconds,
    )
