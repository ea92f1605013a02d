"""The one loader for Shuken's plugins. Every entry-point group (engines, parsers, tokenisers, and guards to come)
is read here, so a built-in plugin and a third-party one are found exactly the same way: one line in a
package's `pyproject.toml` under the group's name."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

ENGINES = "shuken.engines"  # name → Engine class; a model's manifest names its engine
PARSERS = "shuken.parsers"  # parser classes; each lists the file suffixes it reads (`suffixes`)
TOKENIZERS = "shuken.tokenizers"  # tokeniser classes; each lists the language codes it serves (`languages`)


class PluginLoadError(ImportError):
    """An installed plugin could not be imported; the message names it and its package."""


@cache
def _entries(group: str) -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=group)}


def names(group: str) -> list[str]:
    """The installed plugins of a group, without importing any of them."""
    return sorted(_entries(group))


@cache
def load(group: str, name: str) -> Any:
    """Import one plugin (only when it is first needed: an upstream-only install never imports llama.cpp).
    KeyError if no plugin of that name is installed."""
    entry = _entries(group)[name]
    try:
        return entry.load()
    except ImportError as exc:
        package = entry.dist.name if entry.dist else "?"
        raise PluginLoadError(f"The {group} plugin '{name}' ({entry.value}, package {package}) cannot be "
                              f"imported: {exc}. Reinstall that package or uninstall it.") from exc


@cache
def by_attribute(group: str, attribute: str) -> dict[str, Any]:
    """Every plugin of a group, keyed by each value of its class attribute `attribute` (e.g. parsers by
    `suffixes`). Plugins are taken in name order, so when two claim the same key the choice is stable."""
    keyed: dict[str, Any] = {}
    for name in names(group):
        plugin = load(group, name)
        for key in getattr(plugin, attribute):
            keyed[key] = plugin
    return keyed
