"""YAML from users (bundle manifests, YOLO `data.yaml`), parsed so that it cannot explode.

A few hundred bytes of nested aliases (`&a [*b, *b, …]`) expand to gigabytes once loaded, so
aliases are refused outright (no manifest or dataset file needs them), and so are documents
larger than `MAX_YAML_BYTES`. Errors are `yaml.YAMLError`s with a position, like any other.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

__all__ = ["MAX_YAML_BYTES", "load"]

MAX_YAML_BYTES = 1024 * 1024


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, "aliases (*name) are not accepted in darkroom's YAML files",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)


def load(data: bytes | str, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The document, as `yaml.safe_load` reads it, minus aliases; at most `max_bytes`."""
    if len(data) > max_bytes:
        raise yaml.YAMLError(f"YAML file larger than {max_bytes} bytes")
    return yaml.load(data, Loader=_NoAliasLoader)
