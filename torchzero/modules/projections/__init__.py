"""Projections: modules that run other modules in a projected space."""
from .cast import To, ViewAsReal
from .projection import ProjectionBase, ScalarProjection, VectorProjection

__all__ = ["ProjectionBase", "ScalarProjection", "To", "VectorProjection", "ViewAsReal"]
