"""Local infrastructure for development, tests and CI: a Kafka broker and PostgreSQL."""
