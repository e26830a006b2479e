"""The loop every protocol runs: load each case with a progress bar, and keep images for a few per dataset."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable, Iterator, Tuple, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Case = TypeVar("Case")


def iterate_cases(items: Iterable[Item], load_case: Callable[[Item], Case], keep_images_per_dataset: int,
                  progress: bool, description: str) -> Iterator[Tuple[Case, bool]]:
    """Yield (case, keep_images): keep_images is True for the first N cases of each ``case.dataset``
    (their images are kept for the visualisations; the rest are dropped to bound memory)."""
    kept: Counter = Counter()
    for item in tqdm(list(items), desc=description, unit="pair", disable=not progress, dynamic_ncols=True):
        case = load_case(item)
        keep = kept[case.dataset] < keep_images_per_dataset
        kept[case.dataset] += int(keep)
        yield case, keep
