"""Topic filter matching (MQTT 3.1.1 section 4.7) and shared-subscription names."""

from __future__ import annotations

SHARE_PREFIX = "$share/"


def valid_filter(topic_filter: str) -> bool:
    """Whether a filter is well formed: '#' only last and alone, '+' alone in its level."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def matches(topic_filter: str, topic: str) -> bool:
    """Whether `topic` matches `topic_filter`; '$' topics never match a leading wildcard."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """`$share/group/filter` -> (group, filter); any other filter -> (None, filter)."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, sep, rest = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group or not sep or not rest or "+" in group or "#" in group:
        raise ValueError(f"invalid shared subscription {topic_filter!r}")
    return group, rest
