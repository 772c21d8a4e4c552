"""Helpers shared by the analyses and reports (names, what a profile holds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

COUNTING_MONITORS = frozenset(["icount", "hotness", "opcodes"])
"""Monitors that fill `ProfileData.counts` with exact per-instruction counts."""


def func_name(module: Module | None, func: int) -> str:
    """A function's display name: its debug/export/import name, else ``func<N>``."""
    name = module.func_name(func) if module is not None else None
    return name if name else f"func{func}"


def has_counts(profile: ProfileData | None) -> bool:
    """Whether ``profile.counts`` holds execution counts (absent means zero)."""
    if profile is None:
        return False
    return bool(profile.counts) or bool(COUNTING_MONITORS & set(profile.monitors))


def has_branches(profile: ProfileData | None) -> bool:
    """Whether ``profile.branches`` was collected (an absent site never ran)."""
    if profile is None:
        return False
    return bool(profile.branches) or "branches" in profile.monitors


def has_coverage(profile: ProfileData | None) -> bool:
    """Whether the profile says which instructions ran (coverage flags or counts)."""
    if profile is None:
        return False
    return has_counts(profile) or any(loc.pc >= 0 for loc in profile.coverage)


def entered(profile: ProfileData, func: int) -> bool | None:
    """Whether ``func`` was entered in the run; None when the profile cannot say."""
    if func in profile.entries:
        return profile.entries[func] > 0
    if func in profile.function_coverage:
        return profile.function_coverage[func]
    if has_counts(profile):
        return any(loc.func == func for loc in profile.counts)
    if profile.entries or "calls" in profile.monitors or "profile" in profile.monitors:
        return False
    return None


def entered_functions(profile: ProfileData) -> set[int] | None:
    """Every function the run entered, or None when the profile cannot say."""
    out: set[int] = {f for f, n in profile.entries.items() if n > 0}
    known = bool(profile.entries) or bool({"calls", "profile"} & set(profile.monitors))
    if profile.function_coverage:
        out |= {f for f, hit in profile.function_coverage.items() if hit}
        known = True
    if has_counts(profile):
        out |= {loc.func for loc, n in profile.counts.items() if n > 0}
        known = True
    return out if known else None
