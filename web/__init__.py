"""HTTP adapters beside cogs/: the REST API under /api/v1, the web gallery, sign-in with Discord.

Like the cogs, they translate requests into calls of bot.services and format the answers; they
never call cogs, repositories or the Nano Banana client.
"""
