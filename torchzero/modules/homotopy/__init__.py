"""Homotopies: modules that optimize a transformation of the loss."""
from .homotopy import ExpHomotopy, HomotopyBase, LambdaHomotopy, LogHomotopy, SqrtHomotopy, SquareHomotopy

__all__ = ["LambdaHomotopy", "SqrtHomotopy", "SquareHomotopy", "ExpHomotopy", "LogHomotopy"]
