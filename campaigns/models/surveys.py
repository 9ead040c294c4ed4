"""Surveys sent by campaign steps (e.g. the farewell survey for churned members)."""

__all__ = []
