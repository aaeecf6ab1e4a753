"""The REST API under /cellops/api/v1: one base handler, one route table."""
