"""The local throwaway PostgreSQL server (see ``server.py``)."""
