"""Messages in English and Spanish, picked from the user's language (`users.language`)."""

from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "error.generic": "Something went wrong. Please try again.",
        "error.invalid": "That input isn't valid.",
        "error.coins": (
            "You need {cost} coins but have {balance}. Ask a moderator for a /grant, "
            "or check your balance with /coins."
        ),
        "error.too_many_jobs": (
            "You already have {limit} images in progress. Wait for one to finish, then try again."
        ),
        "error.queue_full": "The bot is very busy right now. Please try again in a minute.",
        "error.not_allowed": "You're not allowed to do that.",
        "error.not_yours": "That button isn't yours: only {owner} or a moderator can use it.",
        "error.image_not_found": "That image doesn't exist any more.",
        "error.shutting_down": "The bot is restarting. Please try again in a moment.",
        "error.guild_only": "This command only works in a server, not in direct messages.",
        "error.cooldown": "Slow down! Try again in {seconds} s.",
        "error.missing_permissions": "You need the {permissions} permission to do that.",
        "error.unexpected": (
            "Something went wrong on our side (error id `{error_id}`). "
            "Please try again; if it keeps happening, tell the server owner this id."
        ),
        "prompt.empty": "Your prompt is empty. Describe the image you want, e.g. /generate "
        "prompt: a banana astronaut on the moon.",
        "prompt.too_long": "Your prompt is {length} characters; the limit is {limit}. "
        "Shorten it and try again.",
        "aspect.unsupported": "Aspect ratio {ratio} isn't supported. Pick one of: {choices}.",
        "image.empty": "The file {name} is empty. Attach a PNG, JPEG or WebP image.",
        "image.too_large": "The file {name} is {size_mb} MB; the limit is {limit_mb} MB. "
        "Attach a smaller image.",
        "image.not_image": "{name} isn't an image. Attach a PNG, JPEG or WebP image.",
        "image.unsupported_format": "{name} is a {format} file. Attach a PNG, JPEG or WebP image.",
        "image.animated": "{name} is animated. Attach a still PNG, JPEG or WebP image.",
        "image.corrupt": "{name} looks damaged and can't be read. Try exporting it again.",
        "image.too_many_pixels": "{name} is {width}×{height} pixels, which is too big. "
        "Resize it below {limit_mp} megapixels.",
        "image.download_failed": "I couldn't download {name} from Discord. Please try again.",
        "grant.amount": "Grants are between 1 and {max} coins.",
        "grant.bot": "Bots can't hold coins. Pick a person.",
        "grant.reason_too_long": "Reasons are at most {limit} characters.",
        "grant.not_admin": "Only moderators (Manage Server) or bot admins can grant coins.",
        "grant.done": "Granted {amount} coins to {user}. Their balance is now {balance}.",
        "grant.overflow": "That grant would overflow {user}'s balance.",
        "coins.other_forbidden": "Only moderators can see another member's coins.",
        "coins.title": "Coins of {user}",
        "coins.balance": "Balance",
        "coins.generated": "Generated",
        "coins.uploaded": "Uploaded",
        "coins.spent": "Coins spent",
        "coins.history": "Recent activity",
        "coins.no_history": "No coin movements yet.",
        "coins.bot": "Bots don't have coins.",
        "gen.not_configured": "Image generation isn't set up on this bot yet: the server "
        "owner needs to set GEMINI_API_KEY.",
        "gen.queued": "⏳ Queued (position {position}): {prompt}",
        "gen.generating": "🎨 Generating: {prompt}",
        "gen.done_title": "Generated image",
        "gen.prompt": "Prompt",
        "gen.ratio": "Aspect ratio",
        "gen.cost": "Cost",
        "gen.balance": "Balance left",
        "gen.image_id": "Image id",
        "gen.failed": "❌ {reason} Your {coins} coins were refunded.",
        "gen.failed_free": "❌ {reason}",
        "gen.interrupted": 'Your image "{prompt}" was interrupted by a bot restart. '
        "Your {coins} coins were refunded; please try again.",
        "gen.reroll": "Reroll",
        "gen.edit": "Edit",
        "gen.delete": "Delete",
        "gen.edit_title": "Edit this image",
        "gen.edit_label": "What should change?",
        "gen.edit_placeholder": "e.g. make the sky purple",
        "gen.deleted": "🗑️ Image deleted.",
        "gen.submitted": "Started a new image: {prompt}",
        "reason.blocked": "The image service blocked this request ({reason}). "
        "Try rephrasing your prompt.",
        "reason.no_image": "The image service didn't return an image. Try a clearer prompt.",
        "reason.rate_limited": "The image service is rate-limiting us. Please try again later.",
        "reason.unavailable": "The image service is unavailable right now. Please try later.",
        "reason.invalid": "The image service rejected the request: {detail}",
        "reason.auth": "The bot's image API key was refused. Please tell the server owner.",
        "reason.storage": "Saving the image failed. Please try again.",
        "reason.shutdown": "The bot restarted before your image was made.",
        "reason.internal": "Something went wrong while making your image.",
        "upload.done_title": "Image uploaded",
        "upload.title": "Title",
        "upload.title_too_long": "Titles are at most {limit} characters. Shorten it.",
        "upload.description_too_long": "Descriptions are at most {limit} characters. Shorten it.",
        "upload.size": "Size",
        "upload.dimensions": "Dimensions",
        "gallery.empty_self": "Your gallery is empty. Create your first image with /generate!",
        "gallery.empty_other": "{user} has no images yet.",
        "gallery.title": "Gallery of {user}",
        "gallery.footer": "Page {page} of {pages} · {total} images",
        "gallery.previous": "Previous",
        "gallery.next": "Next",
        "gallery.select": "Open an image…",
        "gallery.date": "Created",
        "gallery.kind": "Kind",
        "gallery.untitled": "Untitled",
        "kind.GENERATED": "Generated",
        "kind.UPLOADED": "Uploaded",
    },
    "es": {
        "error.generic": "Algo salió mal. Inténtalo de nuevo.",
        "error.invalid": "Ese dato no es válido.",
        "error.coins": (
            "Necesitas {cost} monedas pero tienes {balance}. Pide a un moderador un /grant "
            "o consulta tu saldo con /coins."
        ),
        "error.too_many_jobs": (
            "Ya tienes {limit} imágenes en curso. Espera a que termine una e inténtalo de nuevo."
        ),
        "error.queue_full": "El bot está muy ocupado. Inténtalo de nuevo en un minuto.",
        "error.not_allowed": "No tienes permiso para hacer eso.",
        "error.not_yours": "Ese botón no es tuyo: solo {owner} o un moderador puede usarlo.",
        "error.image_not_found": "Esa imagen ya no existe.",
        "error.shutting_down": "El bot se está reiniciando. Inténtalo de nuevo en un momento.",
        "error.guild_only": "Este comando solo funciona en un servidor, no en mensajes directos.",
        "error.cooldown": "¡Más despacio! Inténtalo de nuevo en {seconds} s.",
        "error.missing_permissions": "Necesitas el permiso {permissions} para hacer eso.",
        "error.unexpected": (
            "Algo falló por nuestra parte (id de error `{error_id}`). Inténtalo de nuevo; si "
            "sigue pasando, comunica este id al dueño del servidor."
        ),
        "prompt.empty": "Tu descripción está vacía. Describe la imagen que quieres, p. ej. "
        "/generate prompt: un astronauta plátano en la luna.",
        "prompt.too_long": "Tu descripción tiene {length} caracteres; el límite es {limit}. "
        "Acórtala e inténtalo de nuevo.",
        "aspect.unsupported": "La proporción {ratio} no está disponible. Elige una de: {choices}.",
        "image.empty": "El archivo {name} está vacío. Adjunta una imagen PNG, JPEG o WebP.",
        "image.too_large": "El archivo {name} ocupa {size_mb} MB; el límite es {limit_mb} MB. "
        "Adjunta una imagen más pequeña.",
        "image.not_image": "{name} no es una imagen. Adjunta una imagen PNG, JPEG o WebP.",
        "image.unsupported_format": "{name} es un archivo {format}. Adjunta PNG, JPEG o WebP.",
        "image.animated": "{name} es animada. Adjunta una imagen fija PNG, JPEG o WebP.",
        "image.corrupt": "{name} parece dañada y no se puede leer. Prueba a exportarla de nuevo.",
        "image.too_many_pixels": "{name} mide {width}×{height} píxeles, demasiado grande. "
        "Redúcela por debajo de {limit_mp} megapíxeles.",
        "image.download_failed": "No pude descargar {name} de Discord. Inténtalo de nuevo.",
        "grant.amount": "Las concesiones van de 1 a {max} monedas.",
        "grant.bot": "Los bots no pueden tener monedas. Elige a una persona.",
        "grant.reason_too_long": "Los motivos tienen como máximo {limit} caracteres.",
        "grant.not_admin": "Solo los moderadores (Gestionar servidor) o administradores del bot "
        "pueden dar monedas.",
        "grant.done": "Se dieron {amount} monedas a {user}. Su saldo ahora es {balance}.",
        "grant.overflow": "Esa concesión desbordaría el saldo de {user}.",
        "coins.other_forbidden": "Solo los moderadores pueden ver las monedas de otro miembro.",
        "coins.title": "Monedas de {user}",
        "coins.balance": "Saldo",
        "coins.generated": "Generadas",
        "coins.uploaded": "Subidas",
        "coins.spent": "Monedas gastadas",
        "coins.history": "Actividad reciente",
        "coins.no_history": "Aún no hay movimientos.",
        "coins.bot": "Los bots no tienen monedas.",
        "gen.not_configured": "La generación de imágenes aún no está configurada: el dueño "
        "del servidor debe definir GEMINI_API_KEY.",
        "gen.queued": "⏳ En cola (posición {position}): {prompt}",
        "gen.generating": "🎨 Generando: {prompt}",
        "gen.done_title": "Imagen generada",
        "gen.prompt": "Descripción",
        "gen.ratio": "Proporción",
        "gen.cost": "Coste",
        "gen.balance": "Saldo restante",
        "gen.image_id": "Id de imagen",
        "gen.failed": "❌ {reason} Se te devolvieron tus {coins} monedas.",
        "gen.failed_free": "❌ {reason}",
        "gen.interrupted": 'Tu imagen "{prompt}" se interrumpió por un reinicio del bot. '
        "Se te devolvieron tus {coins} monedas; inténtalo de nuevo.",
        "gen.reroll": "Repetir",
        "gen.edit": "Editar",
        "gen.delete": "Borrar",
        "gen.edit_title": "Editar esta imagen",
        "gen.edit_label": "¿Qué debería cambiar?",
        "gen.edit_placeholder": "p. ej. haz el cielo morado",
        "gen.deleted": "🗑️ Imagen borrada.",
        "gen.submitted": "Nueva imagen en marcha: {prompt}",
        "reason.blocked": "El servicio de imágenes bloqueó la petición ({reason}). "
        "Prueba a reformular la descripción.",
        "reason.no_image": "El servicio no devolvió ninguna imagen. Prueba una descripción más "
        "clara.",
        "reason.rate_limited": "El servicio de imágenes nos está limitando. Inténtalo más tarde.",
        "reason.unavailable": "El servicio de imágenes no está disponible. Inténtalo más tarde.",
        "reason.invalid": "El servicio rechazó la petición: {detail}",
        "reason.auth": "La clave de la API del bot fue rechazada. Avisa al dueño del servidor.",
        "reason.storage": "No se pudo guardar la imagen. Inténtalo de nuevo.",
        "reason.shutdown": "El bot se reinició antes de crear tu imagen.",
        "reason.internal": "Algo falló al crear tu imagen.",
        "upload.done_title": "Imagen subida",
        "upload.title": "Título",
        "upload.title_too_long": "Los títulos tienen como máximo {limit} caracteres. Acórtalo.",
        "upload.description_too_long": "Las descripciones tienen como máximo {limit} caracteres.",
        "upload.size": "Tamaño",
        "upload.dimensions": "Dimensiones",
        "gallery.empty_self": "Tu galería está vacía. ¡Crea tu primera imagen con /generate!",
        "gallery.empty_other": "{user} aún no tiene imágenes.",
        "gallery.title": "Galería de {user}",
        "gallery.footer": "Página {page} de {pages} · {total} imágenes",
        "gallery.previous": "Anterior",
        "gallery.next": "Siguiente",
        "gallery.select": "Abrir una imagen…",
        "gallery.date": "Creada",
        "gallery.kind": "Tipo",
        "gallery.untitled": "Sin título",
        "kind.GENERATED": "Generada",
        "kind.UPLOADED": "Subida",
    },
}


def language_from_locale(locale: str | None) -> str:
    """`es-ES` -> `es`; anything we have no messages for -> English."""
    if not locale:
        return DEFAULT_LANGUAGE
    language = str(locale).split("-")[0].lower()
    return language if language in MESSAGES else DEFAULT_LANGUAGE


def t(language: str | None, key: str, **params: Any) -> str:
    """The message `key` in `language` (falling back to English), filled with `params`."""
    table = MESSAGES.get(language or DEFAULT_LANGUAGE, MESSAGES[DEFAULT_LANGUAGE])
    template = table.get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key) or key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
