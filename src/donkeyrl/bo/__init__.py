"""Bayesian optimisation (GP + UCB) for the autoresearch loop; numpy and scipy only.

Public API: ``SearchSpace`` (space.py), ``Optimizer`` with its ``Candidate``, ``Convergence`` and
``Recommendation`` results (optimizer.py). The GP math lives in gp.py and warping.py as pure
functions, the acquisition and its maximisation in acquisition.py.
"""

from .optimizer import Candidate, Convergence, Optimizer, Recommendation
from .space import SearchSpace, SearchSpaceError

__all__ = ["SearchSpace", "SearchSpaceError", "Optimizer", "Candidate", "Convergence",
           "Recommendation"]
