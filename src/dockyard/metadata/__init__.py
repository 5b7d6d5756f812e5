"""Metadata: the ``MetadataStore`` seam and its implementations."""
