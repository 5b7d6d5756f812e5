"""Blob storage: the ``StorageDriver`` seam and its implementations."""
