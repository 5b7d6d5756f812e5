"""The hub's service layer: management operations, authorized for an acting principal, that
the management API, the administrator CLI and the web UI all call."""
