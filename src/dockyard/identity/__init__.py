"""Dockyard's own accounts, organizations, teams and repository permissions."""
