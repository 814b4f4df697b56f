"""Line searches: step sizes found by evaluating the objective along the update direction."""
from .adaptive import AdaptiveBisection
from .backtracking import AdaptiveBacktracking, Backtracking
from .line_search import LineSearchBase
from .scipy import ScipyMinimizeScalar
from .strong_wolfe import StrongWolfe

__all__ = ["LineSearchBase", "Backtracking", "AdaptiveBacktracking", "StrongWolfe", "ScipyMinimizeScalar", "AdaptiveBisection"]
