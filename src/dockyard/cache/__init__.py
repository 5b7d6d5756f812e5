"""Caches shared by the replicas of one registry (Redis), or held in one process."""
