"""The OpenAPI 3.1 document of the REST API, served at /api/v1/openapi.json.

Written by hand next to the routes (web/api.py); tests check that every route is described and
every described path is routed, and validate the API's answers against these schemas.
"""

from __future__ import annotations

from typing import Any

_STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}
_SNOWFLAKE: dict[str, Any] = {"type": ["string", "null"], "pattern": "^[0-9]+$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _links(pointer: str, **operations: str) -> dict[str, Any]:
    """OpenAPI links: where the id in the answer at `pointer` leads (operation -> parameter)."""
    return {
        name: {"operationId": name, "parameters": {parameter: f"$response.body#{pointer}"}}
        for name, parameter in operations.items()
    }


_ERRORS = {
    "401": _error(
        "No token, or a malformed, unknown or revoked one (code token_missing, "
        "token_invalid, token_revoked), or its member left its server (not_member)."
    ),
    "429": _error("Too many requests: wait Retry-After seconds (code error_cooldown)."),
}
_NOT_FOUND = {"404": _error("Not one of your images of this token's server (code not_found).")}
_IMAGE_ID = {
    "name": "image_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_IMAGE_BYTES = {
    "200": {
        "description": "The image's bytes (local storage).",
        "content": {
            "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
            "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
            "image/webp": {"schema": {"type": "string", "contentMediaType": "image/webp"}},
        },
    },
    "302": {"description": "A redirect to a signed URL in the bucket, valid for 5 minutes."},
    **_NOT_FOUND,
    **_ERRORS,
}

SCHEMAS: dict[str, Any] = {
    "Character": {
        "type": "object",
        "required": ["id", "name", "shared", "references", "server_id", "deletable", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "shared": {"type": "boolean", "description": "The server's, not yours."},
            "references": {"type": "integer", "description": "Its saved images."},
            "server_id": _SNOWFLAKE,
            "deletable": {"type": "boolean", "description": "Whether you may delete it."},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable: the message key with dots as underscores "
                        "(image_too_large, prompt_empty, error_coins...), or not_found, "
                        "method_not_allowed, payload_too_large, internal_error.",
                    },
                    "message": {"type": "string", "description": "In the Accept-Language."},
                    "status": {"type": "integer"},
                    "balance": {"type": "integer"},
                    "cost": {"type": "integer"},
                    "error_id": {"type": "string"},
                },
            }
        },
    },
    "Image": {
        "type": "object",
        "required": [
            "id",
            "short_id",
            "type",
            "status",
            "server_id",
            "coins_used",
            "created_at",
            "links",
        ],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "short_id": {"type": "string"},
            "type": {"enum": ["GENERATED", "UPLOADED"]},
            "status": {"enum": ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]},
            "server_id": _SNOWFLAKE,
            "title": _STR_OR_NULL,
            "description": _STR_OR_NULL,
            "prompt": _STR_OR_NULL,
            "model": _STR_OR_NULL,
            "aspect_ratio": _STR_OR_NULL,
            "image_size": _STR_OR_NULL,
            "width": _INT_OR_NULL,
            "height": _INT_OR_NULL,
            "size_bytes": _INT_OR_NULL,
            "mime_type": _STR_OR_NULL,
            "coins_used": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            "links": {
                "type": "object",
                "required": ["self", "file", "thumbnail", "web"],
                "properties": {
                    "self": {"type": "string"},
                    "file": {"type": "string"},
                    "thumbnail": {"type": "string"},
                    "web": _STR_OR_NULL,
                },
            },
        },
    },
    "ImageList": {
        "type": "object",
        "required": ["images", "next_cursor", "links"],
        "properties": {
            "images": {"type": "array", "items": _ref("Image")},
            "next_cursor": _STR_OR_NULL,
            "links": {
                "type": "object",
                "required": ["next"],
                "properties": {"next": _STR_OR_NULL},
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "position", "cost", "images", "error", "refund", "links"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]},
            "position": {
                "type": ["integer", "null"],
                "description": "Place in the queue while waiting, else null.",
            },
            "estimated_start": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "While waiting: when it should start, from its place in the "
                "queue and the model's recent latency (null before any call was measured).",
            },
            "prompt": _STR_OR_NULL,
            "model": _STR_OR_NULL,
            "aspect_ratio": _STR_OR_NULL,
            "image_size": _STR_OR_NULL,
            "cost": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "images": {
                "type": "array",
                "items": _ref("Image"),
                "description": "COMPLETED: the image(s) the model answered with.",
            },
            "error": {
                "type": ["object", "null"],
                "description": "FAILED: why (code and message).",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "refund": {
                "type": ["object", "null"],
                "description": "FAILED: the coins given back (owed: a refund the balance cap "
                "kept from being applied; the server's owner settles it).",
                "properties": {
                    "coins": {"type": "integer", "minimum": 0},
                    "owed": {"type": "integer", "minimum": 0},
                },
            },
            "links": {"type": "object", "properties": {"self": {"type": "string"}}},
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["job", "balance"],
        "properties": {
            "job": _ref("Job"),
            "jobs": {
                "type": "array",
                "items": _ref("Job"),
                "description": "Every job of the order: one per image (`count`); `job` is "
                "the first.",
            },
            "balance": {"type": "integer", "minimum": 0},
        },
    },
    "Uploaded": {
        "type": "object",
        "required": ["image", "balance"],
        "properties": {"image": _ref("Image"), "balance": {"type": "integer", "minimum": 0}},
    },
    "Me": {
        "type": "object",
        "required": ["user", "server", "token", "wallets", "stats", "recent_transactions"],
        "properties": {
            "user": {
                "type": "object",
                "required": ["id", "discord_id"],
                "properties": {
                    "id": {"type": "string"},
                    "discord_id": _SNOWFLAKE,
                    "display_name": _STR_OR_NULL,
                },
            },
            "server": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": _SNOWFLAKE, "name": _STR_OR_NULL},
            },
            "token": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "created_at": {"type": "string"},
                },
            },
            "wallets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "server_id", "coins"],
                    "properties": {
                        "id": {"type": "string"},
                        "server_id": _SNOWFLAKE,
                        "coins": {"type": "integer", "minimum": 0},
                    },
                },
            },
            "stats": {
                "type": "object",
                "properties": {
                    "images": {"type": "integer"},
                    "generated": {"type": "integer"},
                    "uploaded": {"type": "integer"},
                    "coins_spent": {"type": "integer"},
                },
            },
            "recent_transactions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "kind", "delta", "balance_after", "created_at"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string"},
                        "delta": {"type": "integer"},
                        "balance_after": {"type": "integer"},
                        "image_id": _STR_OR_NULL,
                        "job_id": {
                            "type": ["string", "null"],
                            "description": "The paid job a charge or refund belongs to (an "
                            "image job's id is also its first image's id).",
                        },
                        "reason": _STR_OR_NULL,
                        "created_at": {"type": "string"},
                    },
                },
            },
        },
    },
    "GenerateRequest": {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "examples": [{"prompt": "a banana astronaut", "aspect_ratio": "16:9"}],
        "properties": {
            "prompt": {"type": "string", "description": "What to make (as /generate)."},
            # null, like leaving the field out, means the default.
            "aspect_ratio": {"type": ["string", "null"], "default": "1:1"},
            "model": {"type": ["string", "null"], "description": "One of the bot's models."},
            "size": {
                "type": ["string", "null"],
                "description": "1K, 2K, 4K where the model has sizes.",
            },
            "count": {
                "type": ["integer", "null"],
                "default": 1,
                "description": "How many images (as /generate count:), each its own job at "
                "the price of one; at most the server's max_batch (1-4), the member's job "
                "slots and a minute's generate rate (batch_count otherwise).",
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document."}},
        }
    },
    "/api/v1/me": {
        "get": {
            "operationId": "me",
            "summary": "You, your wallet in the token's server, and its latest ledger rows.",
            "responses": {"200": _json(_ref("Me"), "You."), **_ERRORS},
        }
    },
    "/api/v1/images": {
        "get": {
            "operationId": "listImages",
            "summary": "Your finished images of the token's server, newest first.",
            "parameters": [
                {
                    "name": "type",
                    "in": "query",
                    "schema": {"enum": ["all", "generated", "uploaded"], "default": "all"},
                },
                {
                    "name": "server",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "A server id: only the token's own server is reachable.",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 24},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "next_cursor of the previous page (keyset pages).",
                },
            ],
            "responses": {
                "200": _json(_ref("ImageList"), "A page of images."),
                "400": _error("A cursor this API did not give (bad_cursor)."),
                "422": _error("A bad type, server or limit."),
                **_ERRORS,
            },
        }
    },
    "/api/v1/images/upload": {
        "post": {
            "operationId": "uploadImage",
            "summary": "Upload an image to your gallery of the token's server (as /upload).",
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "format": "binary"},
                                "title": {"type": "string", "maxLength": 100},
                                "description": {"type": "string", "maxLength": 1000},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    **_json(_ref("Uploaded"), "Stored (and charged UPLOAD_COST)."),
                    "links": _links(
                        "/image/id",
                        getImage="image_id",
                        getImageFile="image_id",
                        getImageThumbnail="image_id",
                        deleteImage="image_id",
                    ),
                },
                "400": _error("No image part, or a malformed form."),
                "402": _error("Not enough coins (error_coins)."),
                "403": _error("The server's rules refuse it."),
                "413": _error("Over MAX_UPLOAD_BYTES (image_too_large)."),
                "415": _error("Not multipart, or not a PNG, JPEG or WebP image."),
                "422": _error("A damaged image, too many pixels, or a too-long title."),
                **_ERRORS,
            },
        }
    },
    "/api/v1/images/generate": {
        "post": {
            "operationId": "generateImage",
            "summary": "Start a generation (as /generate): charged now, refunded if it fails.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("GenerateRequest")},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["prompt"],
                            "properties": {
                                "prompt": {"type": "string"},
                                "aspect_ratio": {"type": "string"},
                                "model": {"type": "string"},
                                "size": {"type": "string"},
                                "count": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                                "image": {"type": "string", "format": "binary"},
                                "image2": {"type": "string", "format": "binary"},
                            },
                        }
                    },
                },
            },
            "responses": {
                "202": {
                    **_json(_ref("Accepted"), "Queued: poll links.self of the job."),
                    "links": _links("/job/id", getJob="job_id"),
                },
                "400": _error("Malformed JSON or form, or no prompt."),
                "402": _error("Not enough coins (error_coins)."),
                "403": _error(
                    "The server's rules refuse it (e.g. a role is needed, the member is "
                    "blocked there, images only in age-restricted channels)."
                ),
                "413": _error("An input image over MAX_UPLOAD_BYTES."),
                "415": _error("Neither JSON nor multipart, or an input that is no image."),
                "422": _error(
                    "An empty or too long prompt, a ratio, model or size the bot "
                    "doesn't offer, a count of images out of range (batch_count), an "
                    "unknown field, or words the server's blocklist refuses "
                    "(blocklist_prompt_blocked)."
                ),
                "429": _error(
                    "Too many of your images in progress (error_too_many_jobs), a budget "
                    "reached (budget_*: Retry-After is when it resets), or requests; wait "
                    "Retry-After seconds."
                ),
                "503": _error(
                    "Generation isn't set up, the queue is full, or the bot is "
                    "restarting; Retry-After says when to try again."
                ),
                "401": _ERRORS["401"],
            },
        }
    },
    "/api/v1/images/{image_id}": {
        "parameters": [_IMAGE_ID],
        "get": {
            "operationId": "getImage",
            "summary": "One of your images.",
            "responses": {"200": _json(_ref("Image"), "The image."), **_NOT_FOUND, **_ERRORS},
        },
        "delete": {
            "operationId": "deleteImage",
            "summary": "Delete one of your images (its file, thumbnail and row).",
            "responses": {"204": {"description": "Deleted."}, **_NOT_FOUND, **_ERRORS},
        },
    },
    "/api/v1/images/{image_id}/file": {
        "parameters": [_IMAGE_ID],
        "get": {
            "operationId": "getImageFile",
            "summary": "The image itself.",
            "responses": _IMAGE_BYTES,
        },
    },
    "/api/v1/images/{image_id}/thumbnail": {
        "parameters": [_IMAGE_ID],
        "get": {
            "operationId": "getImageThumbnail",
            "summary": "Its 256 px WebP thumbnail.",
            "responses": _IMAGE_BYTES,
        },
    },
    "/api/v1/characters": {
        "get": {
            "operationId": "listCharacters",
            "summary": "Your characters and styles in this token's server, and the server's "
            "shared style sheet (what /generate character:<name> sends).",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["characters"],
                        "properties": {"characters": {"type": "array", "items": _ref("Character")}},
                    },
                    "Yours first by name, then the server's.",
                ),
                **_ERRORS,
            },
        },
        "post": {
            "operationId": "createCharacter",
            "summary": "Save up to four images as a character of yours (as /character save; "
            "`shared` for the server: moderators and bot admins only). Free.",
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "image"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 32},
                                "shared": {"type": "string", "enum": ["true", "false"]},
                                "image": {"type": "string", "format": "binary"},
                                "image2": {"type": "string", "format": "binary"},
                                "image3": {"type": "string", "format": "binary"},
                                "image4": {"type": "string", "format": "binary"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _json(
                    {
                        "type": "object",
                        "required": ["character"],
                        "properties": {"character": _ref("Character")},
                    },
                    "Saved.",
                ),
                "400": _error("A malformed form."),
                "403": _error("`shared` by a member who isn't a moderator."),
                "413": _error("An image over MAX_UPLOAD_BYTES."),
                "415": _error("Not multipart, or a file that is no image."),
                "422": _error("A bad or taken name, no image, too many, or too many characters."),
                **_ERRORS,
            },
        },
    },
    "/api/v1/characters/{character_id}": {
        "parameters": [
            {
                "name": "character_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
        ],
        "delete": {
            "operationId": "deleteCharacter",
            "summary": "Delete a character: yours, or (moderators, bot admins) the server's.",
            "responses": {
                "204": {"description": "Deleted, with its images."},
                "403": _error("Not yours to delete (character_not_yours)."),
                "404": _error("No such character you can see here (character_not_found)."),
                **_ERRORS,
            },
        },
    },
    "/api/v1/jobs/{job_id}": {
        "parameters": [
            {
                "name": "job_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
        ],
        "get": {
            "operationId": "getJob",
            "summary": "A generation's state: PENDING (with its position), PROCESSING, "
            "COMPLETED (with its images) or FAILED (with why and the refund).",
            "responses": {"200": _json(_ref("Job"), "The job."), **_NOT_FOUND, **_ERRORS},
        },
    },
    "/api/v1/jobs/{job_id}/cancel": {
        "parameters": [
            {
                "name": "job_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
        ],
        "post": {
            "operationId": "cancelJob",
            "summary": "Cancel one of your jobs that is still waiting (PENDING): it ends FAILED "
            "(error reason_cancelled) and its cost is refunded at once, exactly once.",
            "responses": {
                "200": _json(_ref("Accepted"), "Cancelled: the job, and your balance after."),
                "409": _error(
                    "It has started (cancel_started: it may be calling the model; it is not "
                    "refunded by a cancel) or ended already (cancel_finished)."
                ),
                **_NOT_FOUND,
                **_ERRORS,
            },
        },
    },
}


# Conversations (issue 22) ------------------------------------------------------------------

SCHEMAS["Turn"] = {
    "type": "object",
    "required": ["id", "position", "prompt", "status", "job_id", "image_id"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "position": {"type": "integer", "minimum": 1},
        "prompt": {"type": "string"},
        "status": {"enum": ["PENDING", "PROCESSING", "COMPLETED"]},
        "job_id": {"type": "string", "format": "uuid", "description": "Its paid job."},
        "image_id": {**_STR_OR_NULL, "description": "What it made (once COMPLETED)."},
    },
}
SCHEMAS["Conversation"] = {
    "type": "object",
    "required": ["id", "image_id", "turns", "undone", "links", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "image_id": {"type": "string", "description": "The image it starts from."},
        "branched_from": {**_STR_OR_NULL, "description": "The turn it was branched from."},
        "thread_id": {**_SNOWFLAKE, "description": "The Discord thread that shows it."},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "turns": {
            "type": "array",
            "items": _ref("Turn"),
            "description": "The turns that count, oldest first (failed ones are left out; "
            "a Reroll's turn takes the place of the one it asked again).",
        },
        "undone": {"type": "integer", "minimum": 0, "description": "Turns undone so far."},
        "links": {"type": "object"},
    },
}
SCHEMAS["TurnAccepted"] = {
    "type": "object",
    "required": ["job", "turn", "conversation", "balance"],
    "properties": {
        "job": _ref("Job"),
        "turn": {
            "type": "object",
            "required": ["id", "position"],
            "properties": {"id": {"type": "string"}, "position": {"type": "integer"}},
        },
        "conversation": _ref("Conversation"),
        "balance": {"type": "integer", "minimum": 0},
    },
}
_CONVERSATION_ID = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_CONVERSATION_NOT_FOUND = {
    "404": _error("Not a conversation you may see (code conv_not_found) or image (not_found).")
}
_TURN_REFUSALS = {
    "400": _error("Malformed JSON or form, or no prompt."),
    "402": _error("Not enough coins (error_coins)."),
    "403": _error(
        "Not yours to continue (conv_not_yours, error_remix_owner_only), or the server's "
        "rules refuse it."
    ),
    "413": _error("A reference image over MAX_UPLOAD_BYTES."),
    "415": _error("Neither JSON nor multipart, or a reference that is no image."),
    "422": _error(
        "An empty or too long prompt, a turn still being made (conv_busy), too many "
        "images for the model, or words the server's blocklist refuses."
    ),
    "429": _error("Too many of your images in progress, a budget reached, or requests."),
    "503": _error("Generation isn't set up, the queue is full, or the bot is restarting."),
}
PATHS["/api/v1/conversations"] = {
    "post": {
        "operationId": "createConversation",
        "summary": "Start a conversation from one of your images (free; each turn is paid).",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["image_id"],
                        "additionalProperties": False,
                        "properties": {"image_id": {"type": "string"}},
                    }
                }
            },
        },
        "responses": {
            "201": {
                **_json(_ref("Conversation"), "Started."),
                "links": _links("/id", getConversation="conversation_id"),
            },
            "400": _error("Malformed JSON."),
            "403": _error("Not your image (error_remix_owner_only) or not of this server."),
            "415": _error("Not JSON."),
            "422": _error("No image_id, an id too short or ambiguous, or an unknown field."),
            **_NOT_FOUND,
            **_ERRORS,
        },
    }
}
PATHS["/api/v1/conversations/{conversation_id}"] = {
    "parameters": [_CONVERSATION_ID],
    "get": {
        "operationId": "getConversation",
        "summary": "A conversation and its turns.",
        "responses": {
            "200": _json(_ref("Conversation"), "The conversation."),
            **_CONVERSATION_NOT_FOUND,
            **_ERRORS,
        },
    },
}
PATHS["/api/v1/conversations/{conversation_id}/turns"] = {
    "parameters": [_CONVERSATION_ID],
    "post": {
        "operationId": "addTurn",
        "summary": "The next turn: a paid job priced like an Edit, sent with the conversation "
        "so far (charged once, refunded once if it fails). Poll the job.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["prompt"],
                        "additionalProperties": False,
                        "properties": {"prompt": {"type": "string"}},
                        "examples": [{"prompt": "now make it night"}],
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["prompt"],
                        "properties": {
                            "prompt": {"type": "string"},
                            "image": {"type": "string", "format": "binary"},
                            "image2": {"type": "string", "format": "binary"},
                        },
                    }
                },
            },
        },
        "responses": {
            "202": {
                **_json(_ref("TurnAccepted"), "Queued: poll the job's links.self."),
                "links": _links("/job/id", getJob="job_id"),
            },
            **_TURN_REFUSALS,
            **_CONVERSATION_NOT_FOUND,
            "401": _ERRORS["401"],
        },
    },
}
PATHS["/api/v1/conversations/{conversation_id}/undo"] = {
    "parameters": [_CONVERSATION_ID],
    "post": {
        "operationId": "undoTurn",
        "summary": "Back one turn (free: nothing is refunded or deleted).",
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["undone", "conversation"],
                    "properties": {
                        "undone": {"type": "integer", "minimum": 1},
                        "conversation": _ref("Conversation"),
                    },
                },
                "Undone: the position of the turn undone.",
            ),
            "403": _error("Not yours (conv_not_yours)."),
            "422": _error("Nothing to undo (conv_nothing) or a turn being made (conv_busy)."),
            **_CONVERSATION_NOT_FOUND,
            **_ERRORS,
        },
    },
}
PATHS["/api/v1/conversations/{conversation_id}/branch"] = {
    "parameters": [_CONVERSATION_ID],
    "post": {
        "operationId": "branchConversation",
        "summary": "A new conversation of yours from any turn of this one (free).",
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "position": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "The turn to go on from (0: the image it "
                                "starts from; default: the last turn).",
                            }
                        },
                    }
                }
            },
        },
        "responses": {
            "201": {
                **_json(_ref("Conversation"), "The branch."),
                "links": _links("/id", getConversation="conversation_id"),
            },
            "400": _error("Malformed JSON."),
            "403": _error("Not yours to remix (error_remix_owner_only)."),
            "415": _error("Not JSON."),
            "422": _error("No such turn (conv_turn_gone), or an unknown field."),
            **_CONVERSATION_NOT_FOUND,
            **_ERRORS,
        },
    },
}


def openapi_document(base_url: str) -> dict[str, Any]:
    """The document, naming the server members reach."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nanobanana-bot API",
            "version": "1.0.0",
            "description": "Your images and generations on this Discord bot. Authenticate "
            "with `Authorization: Bearer <token>`; make a token with /token in a server: it "
            "acts as you, in that server only.",
        },
        "servers": [{"url": base_url or "/"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
