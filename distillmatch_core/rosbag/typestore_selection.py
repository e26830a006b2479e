"""The explicitly chosen message definitions (typestore) used to read and write bags.

Bags written by rosbag2 of Humble do not embed message definitions, so the
reader must be told which distribution's definitions to use; writing also
needs them (Jazzy's metadata carries type hashes). The image and geometry
messages the tools use have the same layout in Humble and Jazzy.
"""
from __future__ import annotations

from typing import Any, Dict

from rosbags.typesys import Stores, get_typestore

TYPESTORES: Dict[str, Stores] = {
    "humble": Stores.ROS2_HUMBLE,
    "jazzy": Stores.ROS2_JAZZY,
}
DEFAULT_TYPESTORE = "humble"


def load_typestore(distro: str) -> Any:
    try:
        store = TYPESTORES[distro]
    except KeyError:
        raise ValueError(f"unknown typestore {distro!r}; choose one of {', '.join(TYPESTORES)}") from None
    return get_typestore(store)
