"""DistillMatch: detector-free RGB-thermal matching distilled from a vision foundation model (ROS-free core)."""
from distillmatch_core.version import __version__

__all__ = ["Matcher", "MatchResult", "__version__"]


def __getattr__(name):
    # Lazy so that ``import distillmatch_core`` (e.g. by the CLI's --help) does not import torch.
    if name == "Matcher":
        from distillmatch_core.matcher import Matcher
        return Matcher
    if name == "MatchResult":
        from distillmatch_core.match_result import MatchResult
        return MatchResult
    raise AttributeError(name)
