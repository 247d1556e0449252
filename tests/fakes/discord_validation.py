"""Check REST requests against Discord's own OpenAPI description, answering as Discord does.

The spec is ``tests/fakes/discord_api_spec/openapi.json``: ``specs/openapi.json`` of
https://github.com/discord/discord-api-spec (MIT; ``source.json`` names the commit; refresh it
with ``python -m tests.fakes.refresh_discord_spec``). :func:`load_spec` reads and indexes it
once per process; each operation's body validator is built on first use and kept.

:meth:`DiscordSpec.check` takes a method, a path under ``/api/v10``, the query and the decoded
body (the JSON body, or the ``payload_json`` part of a multipart one) and returns ``None`` or
what Discord would answer:

- unknown path: 404 ``{"message": "404: Not Found", "code": 0}``; known path, other method:
  405 ``{"message": "405: Method Not Allowed", "code": 0}``;
- a body, path or query that breaks the schema, or one of Discord's documented rules that a
  schema cannot say (:func:`message_rules`): 400 ``{"code": 50035, "message": "Invalid Form
  Body", "errors": {...}}`` with Discord's nested shape, e.g.
  ``{"embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message":
  "Must be 256 or fewer in length."}]}}}}``; the codes and messages are Discord's for the
  common cases (required, lengths, counts, numbers, choices, snowflakes, embed size).

Where discord.py sends a form the spec does not list but Discord accepts, :data:`ALLOWANCES`
says so, one line each, and the checker allows exactly that.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import referencing
import referencing.jsonschema
from jsonschema import Draft202012Validator, ValidationError, validators

SPEC_DIR = Path(__file__).resolve().parent / "discord_api_spec"
SPEC_URI = "urn:discord-api-spec:openapi.json"
MAX_CONTENT_CHARS = 2000
MAX_EMBED_CHARS = 6000
IS_COMPONENTS_V2 = 1 << 15
MAX_ACTION_ROWS = 5

# What discord.py sends that the spec does not describe, and Discord accepts. Each entry is
# applied below (search for its key); nothing else is relaxed.
ALLOWANCES = {
    "snowflake-int": (
        "Snowflakes as JSON integers where the spec says string (discord.py sends "
        "allowed_mentions.users/roles, message_reference ids and attachments[].id as ints)."
    ),
    "int-string": (
        "Integer properties as int-parseable strings (discord.py sends "
        "default_member_permissions as a string; the spec's README: 'Our API accepts strings "
        "for int fields if they are parseable as ints'). Only where the property is plainly "
        "an integer: in a union with a string form (a nonce) a string stays a string."
    ),
}

_INT_STRING = re.compile(r"-?(0|[1-9][0-9]*)")
_SNOWFLAKE_MARK = "x-fake-snowflake"
_INT_MARK = "x-fake-int"
_INT_STRING_KEYWORD = "x-fake-int-string"
ErrorPath = tuple[str | int, ...]
Problem = tuple[ErrorPath, str, str]  # (where, Discord's code, Discord's message)


# ------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class Refusal:
    """What Discord answers to a request it refuses."""

    status: int
    code: int
    message: str
    errors: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None:
            data["errors"] = self.errors
        return data

    def flat(self) -> list[str]:
        """``embeds.0.title: BASE_TYPE_MAX_LENGTH ...`` lines, for test failure reports."""
        if self.errors is None:
            return [self.message]
        return [f"{where or '<body>'}: {code} {msg}" for where, code, msg in _flatten(self.errors)]


def invalid_form_body(problems: Iterable[Problem]) -> Refusal:
    """400 50035 with Discord's nested ``errors`` (``_errors`` lists at the leaves)."""
    root: dict[str, Any] = {}
    for path, code, message in dict.fromkeys(problems):  # once each, in order
        node = root
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return Refusal(400, 50035, "Invalid Form Body", root)


def unknown_route(path_exists: bool) -> Refusal:
    """Discord's answer to a path it does not have (404) or a method it does not take (405)."""
    if path_exists:
        return Refusal(405, 0, "405: Method Not Allowed")
    return Refusal(404, 0, "404: Not Found")


def _flatten(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for key, value in node.items():
        if key == "_errors":
            for e in value:
                yield prefix, e["code"], e["message"]
        else:
            yield from _flatten(value, f"{prefix}.{key}" if prefix else key)


# ------------------------------------------------------------------------------ the spec


@dataclass
class Operation:
    """One method on one path of the spec."""

    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str] = field(repr=False)
    literals: int = field(repr=False)  # literal segments: "/users/@me" beats "/users/{id}"
    params: dict[str, tuple[str, Any, bool]] = field(repr=False)  # name -> (in, schema, req.)
    bodies: dict[str, str] = field(repr=False)  # media type -> JSON pointer of its schema
    body_required: bool = field(repr=False)
    # The OAuth2 scopes a bearer token may use this operation with (any one of them); None:
    # bot tokens only (the spec's `security`).
    oauth_scopes: tuple[str, ...] | None = field(default=None, repr=False)
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)
    _param_validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)


class DiscordSpec:
    """The indexed spec: route matching and request checks (build it with :func:`load_spec`)."""

    def __init__(self, document: dict[str, Any], source: Mapping[str, Any]) -> None:
        self.source = dict(source)
        self.document = _apply_allowances(document)
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self._registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            SPEC_URI, resource
        )
        self._by_path: dict[str, dict[str, Operation]] = {}
        for template, item in self.document["paths"].items():
            shared = item.get("parameters", [])
            methods: dict[str, Operation] = {}
            for method, op in item.items():
                if method == "parameters":
                    continue
                methods[method.upper()] = self._operation(method.upper(), template, shared, op)
            self._by_path[template] = methods
        # Most literal segments first, so fixed names win over parameters.
        self._patterns = sorted(
            ((t, next(iter(ops.values())).pattern) for t, ops in self._by_path.items() if ops),
            key=lambda tp: -self._by_path[tp[0]][next(iter(self._by_path[tp[0]]))].literals,
        )

    @property
    def oauth_scopes(self) -> frozenset[str]:
        """Every OAuth2 scope the spec names (for the authorization-code flow)."""
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        flows = schemes.get("OAuth2", {}).get("flows", {})
        return frozenset(flows.get("authorizationCode", {}).get("scopes", {}))

    def response_schema(self, method: str, template: str, status: int = 200) -> dict[str, Any]:
        """A `$ref` to the schema the spec gives an answer (to check the fake's own)."""
        pointer = (
            f"/paths/{_escape(template)}/{method.lower()}/responses/{status}/content/"
            "application~1json/schema"
        )
        return {"$ref": f"{SPEC_URI}#{pointer}"}

    def validate_response(self, method: str, template: str, body: Any, status: int = 200) -> None:
        """Raise jsonschema's ValidationError if `body` is not what the spec says Discord
        answers."""
        Draft202012Validator(
            self.response_schema(method, template, status), registry=self._registry
        ).validate(body)

    @property
    def commit(self) -> str:
        return str(self.source.get("commit", "unknown"))

    def _operation(
        self, method: str, template: str, shared: list[dict[str, Any]], op: dict[str, Any]
    ) -> Operation:
        params: dict[str, tuple[str, Any, bool]] = {}
        for p in [*shared, *op.get("parameters", [])]:
            params[p["name"]] = (p["in"], p.get("schema", {}), bool(p.get("required")))
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
            if part
        )
        body = op.get("requestBody") or {}
        pointer = f"/paths/{_escape(template)}/{method.lower()}/requestBody/content"
        bodies = {media: f"{pointer}/{_escape(media)}/schema" for media in body.get("content", {})}
        oauth: tuple[str, ...] | None = None
        for requirement in op.get("security", []):
            if "OAuth2" in requirement:
                oauth = (*(oauth or ()), *requirement["OAuth2"])
        return Operation(
            oauth_scopes=oauth,
            method=method,
            template=template,
            operation_id=str(op.get("operationId", "")),
            pattern=re.compile(regex),
            literals=sum(1 for s in template.split("/") if s and not s.startswith("{")),
            params=params,
            bodies=bodies,
            body_required=bool(body.get("required")),
        )

    def find(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """(operation, path parameters, whether the path exists for some method)."""
        for template, pattern in self._patterns:
            match = pattern.fullmatch(path)
            if match:
                return self._by_path[template].get(method.upper()), match.groupdict(), True
        return None, {}, False

    def validator(self, op: Operation, media: str) -> Draft202012Validator | None:
        if media not in op.bodies:
            return None
        found = op._validators.get(media)
        if found is None:
            schema = {"$ref": f"{SPEC_URI}#{op.bodies[media]}"}
            found = op._validators[media] = _Validator(schema, registry=self._registry)
        return found

    def check(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        media: str | None,
        payload: Any,
        *,
        has_body: bool,
    ) -> tuple[Operation | None, Refusal | None]:
        """Check one request. ``media`` is the body's media type (``application/json`` or
        ``multipart/form-data``: then ``payload`` is its ``payload_json``)."""
        op, path_params, exists = self.find(method, path)
        if op is None:
            return None, unknown_route(exists)
        return op, self.check_operation(op, path_params, query, media, payload, has_body)

    def check_operation(
        self,
        op: Operation,
        path_params: Mapping[str, str],
        query: Mapping[str, str],
        media: str | None,
        payload: Any,
        has_body: bool,
    ) -> Refusal | None:
        """Check a request already matched to ``op`` (see :meth:`find`)."""
        problems = list(self._check_params(op, path_params, query))
        if op.bodies:
            chosen = media if media in op.bodies else "application/json"
            instance = payload if has_body else ({} if op.body_required else None)
            validator = self.validator(op, chosen)
            if instance is not None and validator is not None:
                problems += schema_problems(validator.iter_errors(instance))
                problems += message_rules(op.operation_id, instance)
        return invalid_form_body(problems) if problems else None

    def _check_params(
        self, op: Operation, path_params: Mapping[str, str], query: Mapping[str, str]
    ) -> Iterator[Problem]:
        for name, (where, schema, required) in op.params.items():
            raw = path_params.get(name) if where == "path" else query.get(name)
            if raw is None:
                if required and where == "query":
                    yield (name,), "BASE_TYPE_REQUIRED", "This field is required"
                continue
            value = _coerce_param(raw, self._resolve(schema))
            validator = op._param_validators.get(name)
            if validator is None:
                validator = _Validator(_with_base(schema), registry=self._registry)
                op._param_validators[name] = validator
            for path, code, message in schema_problems(validator.iter_errors(value)):
                yield (name, *path), code, message

    def _resolve(self, schema: Any) -> Any:
        """Follow one level of ``$ref`` (enough to see a parameter's type)."""
        if isinstance(schema, dict) and "$ref" in schema:
            return self._registry.resolver(SPEC_URI).lookup(schema["$ref"]).contents
        return schema


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _with_base(schema: Any) -> Any:
    """A parameter's inline schema, its ``#/...`` refs pointing into the document."""
    if isinstance(schema, dict):
        return {
            k: (f"{SPEC_URI}{v}" if k == "$ref" and v.startswith("#") else _with_base(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_with_base(v) for v in schema]
    return schema


def _coerce_param(raw: str, schema: Any) -> Any:
    """Query and path values are text: read them as the type the schema wants."""
    types = _types(schema)
    if "boolean" in types and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    if ("integer" in types or "number" in types) and _INT_STRING.fullmatch(raw):
        return int(raw)
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    t = schema.get("type")
    found = {t} if isinstance(t, str) else set(t or [])
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key, []):
            found |= _types(sub)
    return found


def _apply_allowances(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with :data:`ALLOWANCES` applied to its schemas."""
    doc = copy.deepcopy(document)
    schemas = doc["components"]["schemas"]
    # snowflake-int: a snowflake may also come as a non-negative JSON integer.
    schemas["SnowflakeType"] = {
        "anyOf": [schemas["SnowflakeType"], {"type": "integer", "minimum": 0}],
        _SNOWFLAKE_MARK: True,
    }
    _allow_int_strings(doc)
    return doc


def _allow_int_strings(node: Any) -> None:
    """int-string: every property typed plainly as integer also takes an int-parseable
    string, whose number must meet the same bounds."""
    if isinstance(node, list):
        for item in node:
            _allow_int_strings(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _allow_int_strings(value)
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return
    for name, prop in properties.items():
        types = prop.get("type") if isinstance(prop, dict) else None
        plain = {types} if isinstance(types, str) else set(types or [])
        # Not enums: a discriminator such as an option's "type" stays a plain number.
        if "integer" in plain and plain <= {"integer", "null"} and "enum" not in prop:
            pattern = f"^{_INT_STRING.pattern}$"  # JSON Schema patterns search; anchor it
            text = {"type": "string", "pattern": pattern, _INT_STRING_KEYWORD: prop}
            properties[name] = {"anyOf": [prop, text], _INT_MARK: True}


def _int_string(validator: Any, schema: Any, instance: Any, parent: Any) -> Iterator[Any]:
    """The number an int-string says must meet the integer property's own schema."""
    if isinstance(instance, str) and _INT_STRING.fullmatch(instance):
        yield from validator.descend(int(instance), schema)


_Validator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, validators={_INT_STRING_KEYWORD: _int_string}
)


@functools.cache
def load_spec(directory: Path = SPEC_DIR) -> DiscordSpec:
    """The vendored spec, read and indexed once per process."""
    document = json.loads((directory / "openapi.json").read_bytes())
    source_path = directory / "source.json"
    source = json.loads(source_path.read_text()) if source_path.exists() else {}
    return DiscordSpec(document, source)


# ------------------------------------------------------------------------------ errors


def schema_problems(errors: Iterable[ValidationError]) -> list[Problem]:
    """JSON Schema errors as Discord reports them (deepest cause of each, with its path)."""
    problems: list[Problem] = []
    for error in errors:
        for leaf in _leaves(error):
            problems.extend(_describe(leaf))
    return problems


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that explain ``error``: inside a union, those of the branch the value was
    meant for (the one whose ``type`` discriminator and JSON type it matches)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    if isinstance(error.schema, dict) and (
        error.schema.get(_SNOWFLAKE_MARK)
        or (error.schema.get(_INT_MARK) and not _INT_STRING.fullmatch(str(error.instance)))
    ):
        yield error  # reported as Discord does for a bad snowflake or int, not per branch
        return
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    depth = len(error.absolute_path)

    def rank(errs: list[ValidationError]) -> tuple[int, int, int]:
        discriminator = any(
            e.validator in ("enum", "const") and len(e.absolute_path) == depth + 1 for e in errs
        )
        wrong_type = any(e.validator == "type" and len(e.absolute_path) == depth for e in errs)
        return (int(discriminator), int(wrong_type), len(errs))

    best = min(branches.values(), key=rank)
    for sub in best:
        yield from _leaves(sub)


_LENGTH_BOUNDS = {
    kind: (f"min{noun}", f"max{noun}")
    for noun in ("Length", "Items", "Properties")
    for kind in (f"min{noun}", f"max{noun}")
}


def _describe(error: ValidationError) -> list[Problem]:
    path: ErrorPath = tuple(error.absolute_path)
    kind: Any = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "required":
        missing = [p for p in value if isinstance(instance, dict) and p not in instance]
        return [((*path, p), "BASE_TYPE_REQUIRED", "This field is required") for p in missing]
    if kind in _LENGTH_BOUNDS:
        low, high = (schema.get(k) for k in _LENGTH_BOUNDS[kind])
        if low and high is not None:
            return [(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]
        if kind.startswith("max"):
            return [(path, "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length.")]
        return [(path, "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length.")]
    number = "float" if isinstance(instance, float) else "int"
    if kind in ("maximum", "exclusiveMaximum"):
        message = f"{number} value should be less than or equal to {value}."
        return [(path, "NUMBER_TYPE_MAX", message)]
    if kind in ("minimum", "exclusiveMinimum"):
        message = f"{number} value should be greater than or equal to {value}."
        return [(path, "NUMBER_TYPE_MIN", message)]
    if kind in ("enum", "const"):
        choices = value if kind == "enum" else [value]
        listed = ", ".join(json.dumps(c) for c in choices)
        return [(path, "BASE_TYPE_CHOICES", f"Value must be one of {{{listed}}}.")]
    if kind in ("oneOf", "anyOf") and schema.get(_SNOWFLAKE_MARK):
        return [(path, "NUMBER_TYPE_COERCE", f'Value "{instance}" is not snowflake.')]
    if kind in ("oneOf", "anyOf") and schema.get(_INT_MARK):
        return [(path, "NUMBER_TYPE_COERCE", f'Value "{instance}" is not int.')]
    if kind == "type":
        wanted = {value} if isinstance(value, str) else set(value)
        wanted.discard("null")
        if wanted & {"integer", "number"}:
            noun = "int" if "integer" in wanted else "float"
            return [(path, "NUMBER_TYPE_COERCE", f'Value "{instance}" is not {noun}.')]
        if "string" in wanted:
            return [(path, "BASE_TYPE_STRING", f'Could not interpret "{instance}" as string.')]
        if "boolean" in wanted:
            return [(path, "BOOLEAN_TYPE_CONVERT", "Must be either true or false.")]
        if "array" in wanted:
            return [(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")]
        if "object" in wanted:
            return [(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")]
    if kind == "pattern":
        return [(path, "STRING_TYPE_REGEX", "String value did not match validation regex.")]
    if kind == "uniqueItems":
        return [(path, "LIST_ITEM_VALUE_DUPLICATE", "List items must be unique.")]
    if kind in ("oneOf", "anyOf"):
        return [(path, "UNION_TYPE_CHOICES", "Value matches none of the allowed forms.")]
    return [(path, "BASE_TYPE_INVALID", error.message)]


# ------------------------------------------------------------------------------ Discord's rules


# Operations whose body (or, for an interaction callback, its ``data``) is a message.
_MESSAGE_OPERATIONS = frozenset(
    {
        "create_message",
        "update_message",
        "execute_webhook",
        "update_original_webhook_message",
        "update_webhook_message",
    }
)
_MESSAGE_CALLBACKS = frozenset({4, 5, 7})


def message_rules(operation_id: str, body: Any) -> list[Problem]:
    """Discord's documented message limits that the spec does not say: content of at most
    2000 characters from a bot (the spec allows 4000 on channel messages, a limit for Nitro
    users), 6000 characters across all embeds, embed fields with a name and a value, unique
    custom ids, at most five action rows (unless the message uses components v2)."""
    if not isinstance(body, dict):
        return []
    prefix: ErrorPath = ()
    message: Any = body
    if operation_id == "create_interaction_response":
        if body.get("type") not in _MESSAGE_CALLBACKS:
            return []
        prefix, message = ("data",), body.get("data")
    elif operation_id not in _MESSAGE_OPERATIONS:
        return []
    if not isinstance(message, dict):
        return []
    problems: list[Problem] = []
    content = message.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT_CHARS:
        message_ = f"Must be {MAX_CONTENT_CHARS} or fewer in length."
        problems.append(((*prefix, "content"), "BASE_TYPE_MAX_LENGTH", message_))
    embeds = message.get("embeds")
    if isinstance(embeds, list):
        if sum(_embed_chars(e) for e in embeds if isinstance(e, dict)) > MAX_EMBED_CHARS:
            problems.append(
                (
                    (*prefix, "embeds"),
                    "MAX_EMBED_SIZE_EXCEEDED",
                    f"Embed size exceeds maximum size of {MAX_EMBED_CHARS}",
                )
            )
        for i, embed in enumerate(embeds):
            fields = embed.get("fields") if isinstance(embed, dict) else None
            for j, f in enumerate(fields if isinstance(fields, list) else []):
                for key in ("name", "value"):
                    if isinstance(f, dict) and f.get(key) == "":
                        where = (*prefix, "embeds", i, "fields", j, key)
                        problems.append((where, "BASE_TYPE_REQUIRED", "This field is required"))
    components = message.get("components")
    if isinstance(components, list):
        flags = message.get("flags")
        v2 = isinstance(flags, int) and bool(flags & IS_COMPONENTS_V2)
        if not v2 and len(components) > MAX_ACTION_ROWS:
            problems.append(
                (
                    (*prefix, "components"),
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {MAX_ACTION_ROWS} or fewer in length.",
                )
            )
        ids = [c["custom_id"] for c in _walk(components) if isinstance(c.get("custom_id"), str)]
        if len(ids) != len(set(ids)):
            problems.append(
                (
                    (*prefix, "components"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                )
            )
    return problems


def _embed_chars(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 limit of one embed."""

    def text(value: Any) -> int:
        return len(value) if isinstance(value, str) else 0

    total = text(embed.get("title")) + text(embed.get("description"))
    for key in ("footer", "author"):
        part = embed.get(key)
        if isinstance(part, dict):
            total += text(part.get("text")) + text(part.get("name"))
    for f in embed.get("fields") or []:
        if isinstance(f, dict):
            total += text(f.get("name")) + text(f.get("value"))
    return total


def _walk(components: list[Any]) -> Iterator[dict[str, Any]]:
    for comp in components:
        if not isinstance(comp, dict):
            continue
        yield comp
        children = comp.get("components")
        if isinstance(children, list):
            yield from _walk(children)
        for key in ("component", "accessory"):
            child = comp.get(key)
            if isinstance(child, dict):
                yield from _walk([child])
