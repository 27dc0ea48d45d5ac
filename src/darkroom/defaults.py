"""Defaults that several layers state (the CLI, a bundle's manifest, the API's schemas, the
built-in processings, the domain), kept here once. A leaf module: it imports nothing."""

__all__ = ["RUN_TIMEOUT_S"]

RUN_TIMEOUT_S = 2 * 3600  # a run is stopped after this long unless its processing says otherwise
