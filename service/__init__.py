"""The service layer: the use cases every entry point shares (command handling with its unit
of work, queries, import, an auditor's history of a lead)."""
