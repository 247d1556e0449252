"""PermissionService: every rule, server by server (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import EconomyScope
from bot.services.errors import ImageNotFound, NotAllowed
from bot.services.permissions import Actor, Identity, PermissionService
from storage.models import Image, ImageStatus, ImageType, User

A, B = 9001, 9002
NOW = datetime(2025, 1, 1, tzinfo=UTC)
OWNER = User(id="u-owner", discord_id=1, created_at=NOW, updated_at=NOW)
OTHER = User(id="u-other", discord_id=2, created_at=NOW, updated_at=NOW)


def image(guild_id: int | None) -> Image:
    return Image(
        id="i-1", user_id=OWNER.id, type=ImageType.GENERATED, status=ImageStatus.COMPLETED,
        guild_id=guild_id, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def actor(
    user: User | None, guild_id: int | None, *, manages: bool = False, admin: bool = False
) -> Actor:
    discord_id = user.discord_id if user and user.discord_id else 3
    return Actor(
        Identity(discord_id, "x", guild_id=guild_id, can_manage_guild=manages), user, admin
    )


@pytest.fixture
def rules() -> PermissionService:
    return PermissionService(scope=EconomyScope.GUILD, allowed_guild_ids=frozenset({A, B}))


def test_allow_list(rules: PermissionService) -> None:
    assert rules.guild_allowed(A) and rules.guild_allowed(None)
    assert not rules.guild_allowed(7)
    with pytest.raises(NotAllowed):
        rules.check_guild_allowed(7)
    assert PermissionService(scope=EconomyScope.GUILD).guild_allowed(7)  # empty: any


def test_moderators_moderate_their_own_server_only(rules: PermissionService) -> None:
    in_a = image(A)
    b_mod = actor(OTHER, B, manages=True)
    assert not rules.can_see_image(b_mod, in_a)
    with pytest.raises(ImageNotFound):
        rules.check_delete_image(b_mod, in_a, "<@1>")
    a_member = actor(OTHER, A)
    assert rules.can_see_image(a_member, in_a)
    with pytest.raises(NotAllowed):
        rules.check_delete_image(a_member, in_a, "<@1>")
    rules.check_delete_image(actor(OTHER, A, manages=True), in_a, "<@1>")
    rules.check_delete_image(actor(None, None, admin=True), in_a, "<@1>")
    # Images whose server is unknown: their owner and bot admins only.
    unknown = image(None)
    assert not rules.can_see_image(actor(OTHER, A, manages=True), unknown)
    assert rules.can_see_image(actor(OWNER, B), unknown)


def test_remix_is_the_owners_in_the_images_server(rules: PermissionService) -> None:
    in_a = image(A)
    rules.check_remix_image(actor(OWNER, A), in_a, "<@1>")
    for who, key in (
        (actor(OTHER, A), "error.remix_owner_only"),
        (actor(OTHER, A, manages=True), "error.remix_owner_only"),
        (actor(OTHER, A, admin=True), "error.remix_owner_only"),
        (actor(OWNER, B), "error.remix_other_server"),
        (actor(OWNER, None), "error.remix_in_server"),
    ):
        with pytest.raises(NotAllowed) as info:
            rules.check_remix_image(who, in_a, "<@1>")
        assert info.value.key == key
    rules.check_remix_image(actor(OWNER, B), image(None), "<@1>")


def test_wallet_rules_by_scope(rules: PermissionService) -> None:
    rules.check_see_wallet(actor(OTHER, A, manages=True), 1)
    with pytest.raises(NotAllowed):
        rules.check_see_wallet(actor(OTHER, A), 1)
    rules.check_grant(actor(OTHER, A, manages=True))
    with pytest.raises(NotAllowed):
        rules.check_grant(actor(OTHER, None, manages=True))
    global_rules = PermissionService(scope=EconomyScope.GLOBAL)
    for check in (global_rules.check_grant, lambda a: global_rules.check_see_wallet(a, 1)):
        with pytest.raises(NotAllowed):
            check(actor(OTHER, A, manages=True))
        check(actor(OTHER, A, admin=True))


def test_channel_and_role_rules(rules: PermissionService) -> None:
    here = Actor(Identity(1, "x", guild_id=A, channel_id=10, role_ids=frozenset({5})), OWNER, False)
    rules.check_allowed_here(here, channel_ids=(), role_id=None)
    rules.check_allowed_here(here, channel_ids=(10, 11), role_id=5)
    with pytest.raises(NotAllowed) as info:
        rules.check_allowed_here(here, channel_ids=(11,))
    assert info.value.key == "settings.wrong_channel" and "<#11>" in info.value.params["channels"]
    with pytest.raises(NotAllowed) as info:
        rules.check_allowed_here(here, channel_ids=(), role_id=6)
    assert info.value.key == "settings.role_required"
    thread = Actor(Identity(1, "x", guild_id=A, channel_id=99, parent_channel_id=11), OWNER, False)
    rules.check_allowed_here(thread, channel_ids=(11,))
