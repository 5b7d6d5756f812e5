"""Access control: the ``AccessController`` seam and its implementations."""
