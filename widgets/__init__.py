"""Textual widgets for the dashboard: node table, lock panel, channel bar, event log, dialogs."""
