"""Messages of the web gallery, the REST API and `/token`, in English and Spanish (merged into
bot.i18n's catalogue: one catalogue, one `t`, the same checks)."""

from __future__ import annotations

WEB: dict[str, dict[str, str]] = {
    "en": {
        "api.unauthenticated": "Send your API token as Authorization: Bearer <token>.",
        "api.token_missing": (
            "This needs an API token: make one with /token create in your server and send it "
            "as Authorization: Bearer <token>."
        ),
        "api.token_invalid": "That API token isn't valid. Make a new one with /token create.",
        "api.token_revoked": "That API token was revoked. Make a new one with /token create.",
        "api.not_member": "You're no longer a member of the server this token was made in.",
        "api.unavailable": "Discord can't be reached right now. Please try again in a minute.",
        "api.bad_cursor": "That page cursor isn't one this API gave. Start from the first page.",
        "api.bad_limit": "limit is a whole number from 1 to {max}.",
        "api.bad_type": "type is one of: {choices}.",
        "api.bad_server": "server is a server id (digits).",
        "api.other_server": (
            "This token reaches only the server it was made in. Make a token there with "
            "/token create."
        ),
        "api.not_multipart": "Send the image as multipart/form-data.",
        "api.not_json": "Send a JSON object (Content-Type: application/json) or a form.",
        "api.bad_json": "The body isn't a JSON object.",
        "api.bad_form": "The form couldn't be read.",
        "api.missing_field": "{field} is required.",
        "api.not_text": "{field} must be text.",
        "api.unknown_field": "{field} isn't a field this endpoint takes.",
        "api.unexpected_file": "{field} isn't a file this endpoint takes.",
        "api.field_too_long": "{field} is longer than {limit} characters.",
        "api.job_failed": "The image could not be made.",
        "token.name_too_long": "Token names are at most {limit} characters.",
        "token.too_many": (
            "You already have {limit} active tokens in this server. Revoke one with /token "
            "revoke first."
        ),
        "token.not_found": "You have no active token {id} in this server. See /token list.",
        "token.ambiguous": "More than one of your tokens matches {id}. Type more of its id.",
        "token.created": (
            "🔑 Your API token **{name}** (`{id}`) for this server. It is shown only this "
            "once: copy it now.\n```\n{token}\n```\nIt acts as you, in this server only. "
            "Revoke it with `/token revoke id:{id}`."
        ),
        "token.created_usage": "Try it:\n```\ncurl -H 'Authorization: Bearer {token}' {url}\n```",
        "token.web_off": "The bot's web API is turned off (WEB_PORT=0), so tokens do nothing yet.",
        "token.list_title": "Your API tokens in this server",
        "token.none": "You have no API tokens here. Make one with /token create.",
        "token.line": "`{id}` **{name}** · made {created} · last used {used}",
        "token.never": "never",
        "token.revoked_line": "~~`{id}` {name}~~ · revoked {revoked}",
        "token.revoked": "Revoked the token **{name}** (`{id}`). It no longer works.",
        "gen.web_gallery": "Open in web gallery",
        "web.title": "Nano Banana gallery",
        "web.tagline": "Your images from Discord, in full size.",
        "web.sign_in": "Sign in with Discord",
        "web.sign_in_off_title": "Sign-in is off",
        "web.sign_in_off": (
            "This bot's host hasn't set up sign-in with Discord yet (DISCORD_CLIENT_ID and "
            "DISCORD_CLIENT_SECRET). Your images are still in Discord: use /gallery there."
        ),
        "web.sign_out": "Sign out",
        "web.signed_in_as": "Signed in as {name}",
        "web.servers": "Servers",
        "web.all_servers": "All servers",
        "web.empty": "No images here yet. Make one with /generate in Discord.",
        "web.older": "Older images",
        "web.newest": "Newest images",
        "web.count": "{total} images",
        "web.prompt": "Prompt",
        "web.model": "Model",
        "web.size": "Size",
        "web.dimensions": "Dimensions",
        "web.date": "Created",
        "web.cost": "Cost",
        "web.kind": "Kind",
        "web.download": "Download",
        "web.delete": "Delete",
        "web.delete_title": "Delete this image?",
        "web.delete_confirm": (
            "The image, its thumbnail and its details are removed for good. Coins spent on it "
            "are not refunded."
        ),
        "web.cancel": "Cancel",
        "web.deleted": "The image was deleted.",
        "web.back": "Back to the gallery",
        "web.not_found_title": "Not found",
        "web.not_found": "There's nothing here, or it isn't yours.",
        "web.signin_failed": "Signing in with Discord didn't work. Please try again.",
        "web.signin_denied": "Sign-in was cancelled on Discord.",
        "web.signin_expired": "That sign-in link has expired. Please sign in again.",
        "web.csrf": "This form has expired. Go back, reload the page and try again.",
        "web.no_servers": (
            "None of your servers has this bot. Your own images of every server are under "
            "“All servers”."
        ),
        "web.untitled": "Untitled",
        "web.error_title": "Something went wrong",
        "cmd.token.name": "token",
        "cmd.token.description": "API tokens for scripts and integrations (the bot's web API)",
        "cmd.token.create.name": "create",
        "cmd.token.create.description": "Make a personal API token for this server",
        "cmd.token.create.opt.name.name": "name",
        "cmd.token.create.opt.name.description": "A name to tell it apart, e.g. my-script",
        "cmd.token.list.name": "list",
        "cmd.token.list.description": "Your API tokens in this server, with their last use",
        "cmd.token.revoke.name": "revoke",
        "cmd.token.revoke.description": "Revoke one of your API tokens",
        "cmd.token.revoke.opt.id.name": "id",
        "cmd.token.revoke.opt.id.description": "The token's id (from /token list) or its name",
    },
    "es": {
        "api.unauthenticated": "Envía tu token de API como Authorization: Bearer <token>.",
        "api.token_missing": (
            "Esto necesita un token de API: crea uno con /token crear en tu servidor y "
            "envíalo como Authorization: Bearer <token>."
        ),
        "api.token_invalid": "Ese token de API no es válido. Crea uno nuevo con /token crear.",
        "api.token_revoked": "Ese token de API fue revocado. Crea uno nuevo con /token crear.",
        "api.not_member": "Ya no eres miembro del servidor donde se creó este token.",
        "api.unavailable": "Ahora no se puede contactar con Discord. Inténtalo en un minuto.",
        "api.bad_cursor": "Ese cursor de página no lo dio esta API. Empieza por la primera página.",
        "api.bad_limit": "limit es un número entero de 1 a {max}.",
        "api.bad_type": "type es uno de: {choices}.",
        "api.bad_server": "server es el id de un servidor (dígitos).",
        "api.other_server": (
            "Este token solo llega al servidor donde se creó. Crea un token allí con /token crear."
        ),
        "api.not_multipart": "Envía la imagen como multipart/form-data.",
        "api.not_json": "Envía un objeto JSON (Content-Type: application/json) o un formulario.",
        "api.bad_json": "El cuerpo no es un objeto JSON.",
        "api.bad_form": "No se pudo leer el formulario.",
        "api.missing_field": "{field} es obligatorio.",
        "api.not_text": "{field} debe ser texto.",
        "api.unknown_field": "{field} no es un campo que acepte este endpoint.",
        "api.unexpected_file": "{field} no es un archivo que acepte este endpoint.",
        "api.field_too_long": "{field} tiene más de {limit} caracteres.",
        "api.job_failed": "No se pudo crear la imagen.",
        "token.name_too_long": "Los nombres de token tienen como mucho {limit} caracteres.",
        "token.too_many": (
            "Ya tienes {limit} tokens activos en este servidor. Revoca uno antes con /token "
            "revocar."
        ),
        "token.not_found": (
            "No tienes ningún token activo {id} en este servidor. Mira /token lista."
        ),
        "token.ambiguous": "Más de uno de tus tokens coincide con {id}. Escribe más de su id.",
        "token.created": (
            "🔑 Tu token de API **{name}** (`{id}`) para este servidor. Solo se muestra esta "
            "vez: cópialo ahora.\n```\n{token}\n```\nActúa como tú, solo en este servidor. "
            "Revócalo con `/token revocar id:{id}`."
        ),
        "token.created_usage": "Pruébalo:\n```\ncurl -H 'Authorization: Bearer {token}' {url}\n```",
        "token.web_off": (
            "La API web del bot está apagada (WEB_PORT=0), así que los tokens aún no sirven."
        ),
        "token.list_title": "Tus tokens de API en este servidor",
        "token.none": "No tienes tokens de API aquí. Crea uno con /token crear.",
        "token.line": "`{id}` **{name}** · creado {created} · último uso {used}",
        "token.never": "nunca",
        "token.revoked_line": "~~`{id}` {name}~~ · revocado {revoked}",
        "token.revoked": "Token **{name}** (`{id}`) revocado. Ya no funciona.",
        "gen.web_gallery": "Abrir en la galería web",
        "web.title": "Galería Nano Banana",
        "web.tagline": "Tus imágenes de Discord, a tamaño completo.",
        "web.sign_in": "Entrar con Discord",
        "web.sign_in_off_title": "El acceso está desactivado",
        "web.sign_in_off": (
            "Quien aloja este bot aún no ha configurado el acceso con Discord "
            "(DISCORD_CLIENT_ID y DISCORD_CLIENT_SECRET). Tus imágenes siguen en Discord: usa "
            "/gallery allí."
        ),
        "web.sign_out": "Salir",
        "web.signed_in_as": "Conectado como {name}",
        "web.servers": "Servidores",
        "web.all_servers": "Todos los servidores",
        "web.empty": "Aún no hay imágenes aquí. Crea una con /generate en Discord.",
        "web.older": "Imágenes anteriores",
        "web.newest": "Imágenes más recientes",
        "web.count": "{total} imágenes",
        "web.prompt": "Prompt",
        "web.model": "Modelo",
        "web.size": "Tamaño",
        "web.dimensions": "Dimensiones",
        "web.date": "Creada",
        "web.cost": "Coste",
        "web.kind": "Tipo",
        "web.download": "Descargar",
        "web.delete": "Borrar",
        "web.delete_title": "¿Borrar esta imagen?",
        "web.delete_confirm": (
            "Se eliminan para siempre la imagen, su miniatura y sus datos. Las monedas "
            "gastadas en ella no se devuelven."
        ),
        "web.cancel": "Cancelar",
        "web.deleted": "La imagen se borró.",
        "web.back": "Volver a la galería",
        "web.not_found_title": "No encontrado",
        "web.not_found": "Aquí no hay nada, o no es tuyo.",
        "web.signin_failed": "No se pudo entrar con Discord. Inténtalo de nuevo.",
        "web.signin_denied": "El acceso se canceló en Discord.",
        "web.signin_expired": "Ese enlace de acceso ha caducado. Vuelve a entrar.",
        "web.csrf": "Este formulario ha caducado. Vuelve atrás, recarga la página e inténtalo "
        "de nuevo.",
        "web.no_servers": (
            "Ninguno de tus servidores tiene este bot. Tus imágenes de todos los servidores "
            "están en «Todos los servidores»."
        ),
        "web.untitled": "Sin título",
        "web.error_title": "Algo salió mal",
        "cmd.token.name": "token",
        "cmd.token.description": "Tokens de API para scripts e integraciones (la API web del bot)",
        "cmd.token.create.name": "crear",
        "cmd.token.create.description": "Crea un token de API personal para este servidor",
        "cmd.token.create.opt.name.name": "nombre",
        "cmd.token.create.opt.name.description": "Un nombre para distinguirlo, p. ej. mi-script",
        "cmd.token.list.name": "lista",
        "cmd.token.list.description": "Tus tokens de API en este servidor, con su último uso",
        "cmd.token.revoke.name": "revocar",
        "cmd.token.revoke.description": "Revoca uno de tus tokens de API",
        "cmd.token.revoke.opt.id.name": "id",
        "cmd.token.revoke.opt.id.description": "El id del token (de /token lista) o su nombre",
    },
}
