"""Read models built from the event stream, their stores and queries."""
