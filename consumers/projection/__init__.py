"""Projection runners: embedded (following the event store) and Kafka mode, and rebuild."""
