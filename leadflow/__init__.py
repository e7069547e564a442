"""leadflow: an event-sourced lead lifecycle engine (CLI, HTTP API, settings, logging)."""
