"""The JSON shapes of the API (described in web/openapi.py; tests check answers against it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.i18n import t
from bot.services.conversations import ConversationView
from bot.services.generation import ImageJobView
from bot.services.jobs import recorded_refund
from bot.services.types import (
    Character,
    CoinTransaction,
    Image,
    JobStatus,
    User,
    UserStats,
    Wallet,
)


def snowflake(value: int | None) -> str | None:
    """Discord ids as strings: they pass JavaScript's safe integers."""
    return str(value) if value is not None else None


def character_json(character: Character, *, deletable: bool) -> dict[str, Any]:
    """A saved character as the API shows it (its images stay in storage)."""
    return {
        "id": character.id,
        "name": character.name,
        "shared": character.shared,
        "references": len(character.refs),
        "server_id": snowflake(character.guild_id),
        "deletable": deletable,
        "created_at": character.created_at.isoformat(),
    }


def image_json(image: Image, web_url: str | None = None) -> dict[str, Any]:
    meta = image.metadata
    base = f"/api/v1/images/{image.id}"
    return {
        "id": image.id,
        "short_id": image.short_id,
        "type": image.type.value,
        "status": image.status.value,
        "server_id": snowflake(image.guild_id),
        "title": image.title,
        "description": image.description,
        "prompt": image.prompt,
        "model": meta.get("model"),
        "aspect_ratio": meta.get("aspect_ratio"),
        "image_size": meta.get("image_size"),
        "width": meta.get("width"),
        "height": meta.get("height"),
        "size_bytes": meta.get("size"),
        "mime_type": meta.get("mime_type"),
        "coins_used": image.coins_used,
        "created_at": image.created_at.isoformat(),
        "links": {
            "self": base,
            "file": f"{base}/file",
            "thumbnail": f"{base}/thumbnail",
            "web": web_url,
        },
    }


def job_json(view: ImageJobView, *, language: str, web_url: str | None = None) -> dict[str, Any]:
    """An image job: its state, and its images or its failure and refund (from its row: the
    same answer from every process, before and after a restart)."""
    job = view.job
    request = job.request
    created = job.created_at.isoformat() if job.created_at else None
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "position": view.position,
        # When a waiting job should start (ISO-8601 UTC), from the queue and the API's recent
        # latency; null when it isn't waiting or nothing was measured yet.
        "estimated_start": (
            (datetime.now(UTC) + timedelta(seconds=view.starts_in)).isoformat()
            if view.starts_in is not None
            else None
        ),
        "prompt": request.get("prompt"),
        "model": request.get("model"),
        "aspect_ratio": request.get("aspect_ratio"),
        "image_size": request.get("image_size"),
        "cost": job.cost,
        "created_at": created,
        "updated_at": job.updated_at.isoformat() if job.updated_at else created,
        "images": [image_json(i, web_url if i.id == job.id else None) for i in view.images],
        "error": None,
        "refund": None,
        "links": {"self": f"/api/v1/jobs/{job.id}"},
    }
    if job.status is JobStatus.FAILED:
        refunded, owed = recorded_refund(job)
        key, params = view.reason or ("api.job_failed", {})
        body["error"] = {"code": key.replace(".", "_"), "message": t(language, key, **params)}
        body["refund"] = {"coins": refunded, "owed": owed}
    return body


def wallet_json(wallet: Wallet) -> dict[str, Any]:
    return {"id": wallet.id, "server_id": snowflake(wallet.guild_id), "coins": wallet.coins}


def transaction_json(row: CoinTransaction) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind.value,
        "delta": row.delta,
        "balance_after": row.balance_after,
        "image_id": row.image_id,
        "job_id": row.job_id,
        "reason": row.reason,
        "created_at": row.created_at.isoformat(),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "discord_id": snowflake(user.discord_id),
        "display_name": user.display_name,
    }


def stats_json(stats: UserStats) -> dict[str, Any]:
    return {
        "images": stats.total_images,
        "generated": stats.generated,
        "uploaded": stats.uploaded,
        "coins_spent": stats.coins_spent,
    }


def conversation_json(view: ConversationView) -> dict[str, Any]:
    """A conversation: the image it starts from and the turns that count, oldest first."""
    conversation = view.conversation
    base = f"/api/v1/conversations/{conversation.id}"
    return {
        "id": conversation.id,
        "image_id": conversation.root_image_id,
        "branched_from": conversation.branched_from,
        "thread_id": snowflake(conversation.thread_id),
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "turns": [
            {
                "id": turn.id,
                "position": turn.position,
                "prompt": turn.prompt,
                "status": turn.status,
                "job_id": turn.job_id,
                "image_id": turn.image_id,
            }
            for turn in view.turns
        ],
        "undone": view.undone,
        "links": {
            "self": base,
            "turns": f"{base}/turns",
            "undo": f"{base}/undo",
            "branch": f"{base}/branch",
        },
    }
