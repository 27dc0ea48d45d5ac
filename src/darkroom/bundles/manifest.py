"""`darkroom.yaml`: what a bundle is, how to call it, what it takes and what it needs.

    name: count-boxes
    type: pre_annotation            # a processing type
    description: Counts boxes per label
    entrypoint: main:run            # module:function taking a ProcessingContext, or a
                                    # script (run.py) that calls ProcessingContext.from_env()
    parameters:                     # JSON Schema of the parameters, with defaults
      type: object
      properties:
        batch_size: {type: integer, minimum: 1, default: 8}
    needs_model: false
    timeout: 3600                   # seconds
    requirements: requirements.txt  # pinned (name==version), one per line; optional

Or, instead of `entrypoint`, a container image: `image: registry/name:tag` and `command: [...]`.
Errors name the field (`loc`), so the CLI can point at the line to fix.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from darkroom import safe_yaml
from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.domain.resources import parse_resources
from darkroom.errors import InvalidInput
from darkroom.text import check_name
from darkroom.values import IMAGE_REFERENCE, check_kinds

__all__ = ["MANIFEST", "Manifest", "parse_manifest", "parse_requirements", "requirements_key"]

MANIFEST = "darkroom.yaml"
KNOWN_KEYS = {
    "name", "type", "target", "description", "entrypoint", "parameters", "needs_model",
    "timeout", "resources", "requirements", "image", "command", "network",
}  # fmt: skip


def bad(message: str, *loc: str | int, code: str = "invalid_bundle") -> InvalidInput:
    return InvalidInput(message, code=code, details={"loc": ["bundle", *loc]})


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    type: str
    target: str = "dataset_version"
    description: str = ""
    entrypoint: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    needs_model: bool = False
    timeout_s: int = RUN_TIMEOUT_S
    resources: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    image: str | None = None
    command: list[str] = field(default_factory=list)


def _resources(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`resources`, with the top-level `network: true` folded in (a run's network is one of its
    resources); checked as the API checks them, errors naming the manifest."""
    resources = dict(_typed(doc, "resources", dict, {}))
    network = _typed(doc, "network", bool, None)
    if network is not None:
        resources["network"] = network
    try:
        parse_resources(resources)
    except InvalidInput as exc:
        raise bad(f"{MANIFEST}: {exc.message}", MANIFEST, *exc.details["loc"]) from exc
    return resources


def _typed(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise bad(f"{MANIFEST}: '{key}' must be a {names}", MANIFEST, key)
    return value


def parse_requirements(text: str, path: str = "requirements.txt") -> list[str]:
    """Pinned requirements (`name==version`, extras and markers allowed), normalized.

    Options (`-e`, `--index-url`, `-r`), URLs and ranges are refused: an environment is keyed
    by these lines, so they must name exact releases from the machine's package index.
    """
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            option = line.split()[0]
            raise bad(f"{path} line {number}: options such as {option!r} are not allowed; "
                      "list pinned packages only (name==version)", path, number)  # fmt: skip
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            message = f"{path} line {number}: cannot parse {line!r} ({exc})"
            raise bad(message, path, number) from exc
        if req.url:
            raise bad(f"{path} line {number}: URLs are not allowed ({req.name} @ …); packages "
                      "come from the machine's package index", path, number)  # fmt: skip
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
            raise bad(f"{path} line {number}: {line!r} is not pinned; write "
                      f"{req.name}==<version>", path, number)  # fmt: skip
        out.append(str(req))
    return sorted(out, key=str.lower)


def requirements_key(python: str, requirements: list[str]) -> str:
    """The environment's identity: same Python and same pins share one virtualenv."""
    doc = "\n".join([f"python {python}", *requirements])
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


def _parse(path: str, files: Mapping[str, bytes]) -> ast.Module:
    """The module's syntax tree, compiled once to catch what parsing alone lets through (a
    top-level `return`), or an error naming the file and line."""
    try:
        tree = ast.parse(files[path].decode("utf-8"), path)
        compile(tree, path, "exec")
        return tree
    except (SyntaxError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise bad(f"{path}{f' line {line}' if line else ''}: {getattr(exc, 'msg', exc)}",
                  path, line or 0) from exc  # fmt: skip


def _check_script(path: str, files: Mapping[str, bytes]) -> None:
    if path not in files:
        raise bad(f"{MANIFEST}: entrypoint script {path!r} is not in the bundle", MANIFEST,
                  "entrypoint")  # fmt: skip
    _parse(path, files)


def _check_entrypoint(entrypoint: str, files: Mapping[str, bytes]) -> None:
    if entrypoint.endswith(".py") and ":" not in entrypoint:
        _check_script(entrypoint, files)
        return
    module, sep, function = entrypoint.partition(":")
    if (
        not sep
        or not function.isidentifier()
        or not all(part.isidentifier() for part in module.split("."))
    ):
        raise bad(f"{MANIFEST}: entrypoint {entrypoint!r} must be 'module:function' "
                  "(e.g. main:run) or a script (e.g. run.py)", MANIFEST, "entrypoint")  # fmt: skip
    base = module.replace(".", "/")
    path = next((p for p in (f"{base}.py", f"{base}/__init__.py") if p in files), None)
    if path is None:
        raise bad(f"{MANIFEST}: entrypoint module {module!r} not found in the bundle (looked "
                  f"for {base}.py and {base}/__init__.py)", MANIFEST, "entrypoint")  # fmt: skip
    defined = {
        node.name
        for node in _parse(path, files).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if function not in defined:
        raise bad(f"{path} defines no function {function!r} (the entrypoint)", MANIFEST,
                  "entrypoint")  # fmt: skip


def parse_manifest(files: Mapping[str, bytes]) -> Manifest:
    """The bundle's manifest, checked against its files; errors say what and where."""
    from darkroom.domain.parameters import check_schema

    if MANIFEST not in files:
        raise bad(f"the bundle has no {MANIFEST} at its top level", MANIFEST)
    try:
        doc = safe_yaml.load(files[MANIFEST].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise bad(f"{MANIFEST} is not UTF-8 text", MANIFEST) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise bad(f"{MANIFEST}{where}: not valid YAML ({getattr(exc, 'problem', exc)})",
                  MANIFEST, (mark.line + 1) if mark else 0) from exc  # fmt: skip
    if not isinstance(doc, dict):
        raise bad(f"{MANIFEST} must be a mapping of keys (name, type, entrypoint, …)", MANIFEST)
    unknown = sorted(set(doc) - KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise bad(f"{MANIFEST}: unknown key {unknown[0]!r} (known: {known})", MANIFEST, unknown[0])
    for key in ("name", "type"):
        if not doc.get(key):
            raise bad(f"{MANIFEST}: '{key}' is required", MANIFEST, key)
    name = check_name(str(_typed(doc, "name", str, "")), "processing")
    type_ = _typed(doc, "type", str, "")
    target = _typed(doc, "target", str, "dataset_version")
    check_kinds(type_, target)
    parameters = _typed(doc, "parameters", dict, {"type": "object", "properties": {}})
    try:
        check_schema(parameters)
    except InvalidInput as exc:
        raise bad(f"{MANIFEST}: parameters: {exc.message}", MANIFEST, "parameters",
                  code="invalid_schema") from exc  # fmt: skip
    timeout = _typed(doc, "timeout", int, RUN_TIMEOUT_S)
    entrypoint = _typed(doc, "entrypoint", str, None)
    image = _typed(doc, "image", str, None)
    command = _typed(doc, "command", list, [])
    if image is not None:
        if entrypoint is not None:
            raise bad(f"{MANIFEST}: give either 'entrypoint' (code) or 'image', not both",
                      MANIFEST, "image")  # fmt: skip
        if not IMAGE_REFERENCE.match(image):
            raise bad(f"{MANIFEST}: image {image!r} is not an image reference "
                      "(registry/name:tag)", MANIFEST, "image")  # fmt: skip
        if not all(isinstance(x, str) for x in command):
            raise bad(f"{MANIFEST}: command must be a list of strings", MANIFEST, "command")
    elif entrypoint is None:
        raise bad(f"{MANIFEST}: 'entrypoint' is required (module:function, e.g. main:run)",
                  MANIFEST, "entrypoint")  # fmt: skip
    else:
        _check_entrypoint(entrypoint, files)
    requirements: list[str] = []
    req_path = _typed(doc, "requirements", str, None)
    if req_path is None and "requirements.txt" in files:
        req_path = "requirements.txt"
    if req_path is not None:
        if req_path not in files:
            raise bad(f"{MANIFEST}: requirements file {req_path!r} is not in the bundle",
                      MANIFEST, "requirements")  # fmt: skip
        try:
            text = files[req_path].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad(f"{req_path} is not UTF-8 text", req_path) from exc
        requirements = parse_requirements(text, req_path)
    return Manifest(
        name=name, type=type_, target=target,
        description=str(_typed(doc, "description", str, "")), entrypoint=entrypoint,
        parameters=parameters, needs_model=bool(_typed(doc, "needs_model", bool, False)),
        timeout_s=timeout, resources=_resources(doc),
        requirements=requirements, image=image, command=command,
    )  # fmt: skip
