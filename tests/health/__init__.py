"""Health checks and endpoints."""
