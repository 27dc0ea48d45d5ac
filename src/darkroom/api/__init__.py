"""The REST API under /api/v1. Routes are thin: parse, call `darkroom.domain`, serialize.

`darkroom.server` mounts it beside the pages (`darkroom.web`); neither imports the other.
"""
