"""Adapters: settings, logging, retrying, the event-store factory and mapper, SQL and Kafka
plumbing. They know drivers and libraries, not use cases; they import only ``domain``."""
