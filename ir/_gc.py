"""Pausing the cyclic garbage collector during bulk allocation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding allocates one object per instruction and none of them form
    cycles; letting the collector scan the growing heap over and over costs a
    third of the decode time on large modules, so we hold it off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
