"""The local single-node Apache Kafka broker (see ``broker.py``)."""
