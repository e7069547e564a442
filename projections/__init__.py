"""Read models built from the event stream, their stores and queries.

facts / fact_io     per-lead and per-deal facts and how each event changes them
projector           applies batches of events with their positions in one transaction
store / schema      SQLite or PostgreSQL read-model stores (``open_read_model_store``)
reports             funnel, KPIs, pipeline positions, stalled list
as_of / verify      read models at a past business moment; comparison with a rebuild
"""
