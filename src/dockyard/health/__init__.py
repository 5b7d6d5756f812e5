"""Health checks (Distribution's ``health`` section) and the health endpoints."""
