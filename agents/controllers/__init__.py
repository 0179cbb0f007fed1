"""The published test-time scaling controllers, one per module."""

from agents.controllers.sc import SelfConsistency

__all__ = ["SelfConsistency"]
