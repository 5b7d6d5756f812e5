"""Alembic environment of the metadata schema, run by ``dockyard.metadata.migrate``."""
