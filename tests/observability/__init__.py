"""Logs, the access log and metrics."""
