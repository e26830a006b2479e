"""Backend options arrive as ``**kwargs`` through ``Matcher.from_pretrained``; each backend turns them
into its own frozen dataclass here, so a misspelt option is an error, never silently ignored."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Dict, Type, TypeVar

T = TypeVar("T")


def options_from_kwargs(cls: Type[T], options: Dict[str, Any], backend: str) -> T:
    """``cls(**options)``; an unknown key raises ValueError naming the valid ones."""
    valid = sorted(f.name for f in fields(cls))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown {backend} backend option(s) {unknown}; valid: {valid}")
    return cls(**options)
