"""The REST API under /api/v1. Routes are thin: parse, call `darkroom.domain`, serialize."""

from darkroom.api.app import create_app

__all__ = ["create_app"]
