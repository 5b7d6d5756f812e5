"""The HTTP layer: thin handlers over the core, one module per resource."""
