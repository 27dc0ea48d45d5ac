"""What a processing revision runs: one typed value per kind of source.

A source enters as a JSON object in three places — a request body, the database column, a run's
context in the sandbox — and is parsed there, once, by `parse_source`; past that edge every
layer matches on the type instead of reading a dict by key. `source_doc` writes it back, the
same object it was parsed from (a revision's digest hashes it, so a round trip changes nothing).

A leaf like `darkroom.values`: the domain, the engine, the pages and the runtime import it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from darkroom.errors import InvalidInput
from darkroom.values import IMAGE_REFERENCE

__all__ = [
    "SOURCE_KINDS",
    "BuiltinSource",
    "BundleSource",
    "ImageSource",
    "InlineSource",
    "Source",
    "parse_source",
    "source_doc",
]


@dataclass(frozen=True, slots=True)
class BuiltinSource:
    """A module of `darkroom.processings`, run with the server's own install."""

    kind: ClassVar[str] = "builtin"
    module: str
    code_sha256: str | None = None  # the module's text: a changed built-in gets a new revision


@dataclass(frozen=True, slots=True)
class InlineSource:
    """Python code posted with the processing, its `entrypoint` function taking the context."""

    kind: ClassVar[str] = "inline"
    code: str
    entrypoint: str | None = None  # None: "run" (kept apart so the stored object round-trips)

    @property
    def function(self) -> str:
        return self.entrypoint or "run"


@dataclass(frozen=True, slots=True)
class BundleSource:
    """A pushed bundle (its archive a blob), run in the environment its requirements make."""

    kind: ClassVar[str] = "bundle"
    sha256: str
    entrypoint: str  # "module:function", or a script "name.py" run as __main__
    requirements: tuple[str, ...] = ()
    files: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class ImageSource:
    """A container image: stored and shown, refused at launch by executors that run Python."""

    kind: ClassVar[str] = "image"
    image: str
    command: tuple[str, ...] | None = None


Source = BuiltinSource | InlineSource | BundleSource | ImageSource

_TYPES: dict[str, type[Source]] = {
    t.kind: t for t in (BuiltinSource, InlineSource, BundleSource, ImageSource)
}
SOURCE_KINDS: tuple[str, ...] = tuple(_TYPES)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"source.{field} {message}", code="invalid_source",
                        details={"loc": ["source", field]})  # fmt: skip


def _text(doc: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, "must be a non-empty string" if key in doc else "is missing")
    return value


def _strings(doc: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _bad(key, "must be a list of strings")
    return tuple(value)


def _count(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(key, "must be a count")
    return value


def parse_source(doc: Any, *, strict: bool = True) -> Source:
    """The typed source of a JSON object; InvalidInput (code `invalid_source`, `loc` naming
    the field) for an unknown kind, a missing or mistyped field, or a key the kind has not.
    Not `strict` (what was stored before this parser existed): keys it does not know are
    dropped instead of refused."""
    if not isinstance(doc, dict):
        raise InvalidInput("source must be an object such as "
                           '{"kind": "inline", "code": "...", "entrypoint": "run"}',
                           code="invalid_source", details={"loc": ["source"]})  # fmt: skip
    kind = doc.get("kind")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInput(
            f"source kind {kind!r} is not supported (use 'inline': Python code with an "
            "entrypoint function taking a ProcessingContext; 'image': a container image; or "
            "push a bundle)",
            code="invalid_source", details={"loc": ["source", "kind"]},
        )  # fmt: skip
    known = {f.name for f in fields(cls)} | {"kind"}
    unknown = sorted(set(doc) - known)
    if unknown and not strict:
        doc = {k: v for k, v in doc.items() if k in known}
    elif unknown:
        raise _bad(unknown[0], f"is not a field of a {kind} source ({', '.join(sorted(known))})")
    if cls is InlineSource:
        entrypoint = _text(doc, "entrypoint", required=False)
        if entrypoint is not None and not entrypoint.isidentifier():
            raise _bad("entrypoint", "must be a function name")
        return InlineSource(code=_text(doc, "code", required=True) or "", entrypoint=entrypoint)
    if cls is BuiltinSource:
        return BuiltinSource(module=_text(doc, "module", required=True) or "",
                             code_sha256=_text(doc, "code_sha256", required=False))  # fmt: skip
    if cls is BundleSource:
        return BundleSource(
            sha256=_text(doc, "sha256", required=True) or "",
            entrypoint=_text(doc, "entrypoint", required=True) or "",
            requirements=_strings(doc, "requirements") or (),
            files=_count(doc, "files"), size=_count(doc, "size"),
        )  # fmt: skip
    image = doc.get("image")
    if not isinstance(image, str) or not IMAGE_REFERENCE.match(image):
        raise _bad("image", f"{image!r} is not a container image reference (registry/name:tag)")
    return ImageSource(image=image, command=_strings(doc, "command"))


def source_doc(source: Source) -> dict[str, Any]:
    """The JSON object of a source: what `parse_source` read (fields left unset stay out)."""
    doc: dict[str, Any] = {"kind": source.kind}
    for f in fields(source):
        value = getattr(source, f.name)
        if value is None:
            continue
        doc[f.name] = list(value) if isinstance(value, tuple) else value
    return doc
