"""Messages in English and Spanish, picked from the user's language (`users.language`)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

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
        "grant.amount": "Grants are whole numbers between 1 and {max} coins.",
        "grant.bot": "Bots can't hold coins. Pick a person.",
        "grant.reason_too_long": "Reasons are at most {limit} characters.",
        "grant.not_admin": "Only moderators (Manage Server) or bot admins can grant coins.",
        "grant.done": "Granted {amount} coins to {user}. Their balance is now {balance}.",
        "grant.overflow": "That grant would take {user}'s balance past the maximum of {max} "
        "coins (coins held by images in progress count too). Grant at most {room}.",
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
        "reason.no_image": "The image service didn't return an image. Try a clearer prompt.",
        "reason.rate_limited": "The image service is rate-limiting us. Please try again later.",
        "reason.unavailable": "The image service is unavailable right now. Please try later.",
        "reason.invalid": "The image service rejected the request: {detail}",
        "reason.auth": "The bot's image API key was refused. Please tell the server owner.",
        "reason.storage": "Saving the image failed. Please try again.",
        "reason.shutdown": "The bot restarted before your image was made.",
        "reason.internal": "Something went wrong while making your image.",
        "error.busy": "The bot's database is busy right now. Nothing was charged; please try "
        "again in a moment.",
        "model.unsupported": "The model {model} isn't offered here. Pick one of: {choices}.",
        "aspect.unsupported_model": "{model} can't make {ratio} images. Pick one of: {choices}.",
        "size.not_supported": "{model} has no size setting. Leave the size empty.",
        "size.unsupported": "{model} can't make {size} images. Pick one of: {choices}.",
        "images.too_many": "{model} takes at most {limit} images, and this request has {count}. "
        "Attach fewer images.",
        "image.too_many_pixels_unknown": "{name} has too many pixels. Resize it below "
        "{limit_mp} megapixels.",
        "gen.failed_owed": "❌ {reason} Your {coins} coins couldn't be refunded automatically "
        "because your balance is at the maximum; the bot's owner has been told.",
        "gen.interrupted_owed": 'Your image "{prompt}" was interrupted by a bot restart. Your '
        "{coins} coins couldn't be refunded automatically because your balance is at the "
        "maximum; the bot's owner has been told.",
        "gen.model": "Model",
        "gen.size": "Size",
        "gen.more_images": "More images from this answer",
        "reason.database": "The bot couldn't record your image because its database was busy. "
        "Please try again.",
        "reason.quota_none": "The bot's Google account has no quota for image generation "
        "(billing isn't set up). The bot's owner has been told what to fix.",
        "reason.quota_daily": "The bot has used up its daily image quota with Google. Please "
        "try again tomorrow.",
        "reason.request.too_large": "The request was too large for the image service (its limit "
        "is 20 MB with the images). Use smaller or fewer images.",
        "reason.request.location": "The image service isn't available in the region where this "
        "bot runs. The bot's owner has been told.",
        "reason.request.billing": "The bot's Google account isn't set up for image generation "
        "yet. The bot's owner has been told.",
        "reason.request.model": "The image model this bot is set up with wasn't found. The "
        "bot's owner has been told.",
        "reason.request.ratio": "The image service didn't accept this aspect ratio. Pick "
        "another one.",
        "reason.request.size": "The image service didn't accept this image size. Pick another one.",
        "reason.request.too_many_images": "The image service didn't accept this many images. "
        "Attach fewer.",
        "reason.request.image": "The image service couldn't read one of the images. Try "
        "another image.",
        "block.prompt.SAFETY": "Your prompt was blocked by Google's safety filters before any "
        "image was made. Try rewording it.",
        "block.prompt.IMAGE_SAFETY": "Your prompt or image was refused as unsafe for image "
        "generation, so nothing was made. Try a different prompt or image.",
        "block.prompt.PROHIBITED_CONTENT": "Your prompt asks for content Google prohibits, so "
        "nothing was made. Try something else.",
        "block.prompt.BLOCKLIST": "Your prompt contains a term Google's image service doesn't "
        "accept, so nothing was made. Remove it and try again.",
        "block.prompt.OTHER": "Google's image service refused this prompt without saying why "
        "(sometimes it's the language). Try rewording it.",
        "block.prompt.unknown": "Google's image service refused this prompt. Try rewording it.",
        "block.output.SAFETY": "The answer was stopped by Google's safety filters. Try "
        "rewording your prompt.",
        "block.output.IMAGE_SAFETY": "The generated image was blocked by Google's safety "
        "filters. Try a different prompt.",
        "block.output.PROHIBITED_CONTENT": "The answer was stopped because it may contain "
        "prohibited content. Try a different prompt.",
        "block.output.IMAGE_PROHIBITED_CONTENT": "The generated image was withheld because it "
        "may contain prohibited content. Try a different prompt.",
        "block.output.RECITATION": "The answer was stopped because it was too close to existing "
        "material. Try a more original prompt.",
        "block.output.IMAGE_RECITATION": "The generated image was too close to an existing "
        "image, so it was withheld. Try a more original prompt.",
        "block.output.IMAGE_OTHER": "The model stopped without an image, for a reason it didn't "
        "give. Please try again, perhaps with a reworded prompt.",
        "block.output.OTHER": "The model stopped for a reason it didn't give. Please try again.",
        "block.output.MAX_TOKENS": "The model ran out of room before finishing the image. Try a "
        "shorter prompt or fewer images.",
        "block.output.MALFORMED_FUNCTION_CALL": "The model made an internal mistake and gave "
        "up. Please try again.",
        "block.output.UNEXPECTED_TOOL_CALL": "The model made an internal mistake and gave up. "
        "Please try again.",
        "block.output.TOO_MANY_TOOL_CALLS": "The model made an internal mistake and gave up. "
        "Please try again.",
        "block.output.LANGUAGE": "The image model doesn't support the language of your prompt. "
        "Try writing it in English.",
        "block.output.BLOCKLIST": "The answer was stopped because it contained a forbidden "
        "term. Try rewording your prompt.",
        "block.output.SPII": "The answer was stopped because it might reveal sensitive personal "
        "information. Leave out personal details and try again.",
        "block.output.unknown": "The image service didn't make an image for this request. Try "
        "rewording your prompt.",
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
        "grant.amount": "Las concesiones son números enteros de 1 a {max} monedas.",
        "grant.bot": "Los bots no pueden tener monedas. Elige a una persona.",
        "grant.reason_too_long": "Los motivos tienen como máximo {limit} caracteres.",
        "grant.not_admin": "Solo los moderadores (Gestionar servidor) o administradores del bot "
        "pueden dar monedas.",
        "grant.done": "Se dieron {amount} monedas a {user}. Su saldo ahora es {balance}.",
        "grant.overflow": "Esa concesión superaría el saldo máximo de {user}, {max} monedas "
        "(cuentan también las monedas retenidas por imágenes en curso). Da como máximo {room}.",
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
        "reason.no_image": "El servicio no devolvió ninguna imagen. Prueba una descripción más "
        "clara.",
        "reason.rate_limited": "El servicio de imágenes nos está limitando. Inténtalo más tarde.",
        "reason.unavailable": "El servicio de imágenes no está disponible. Inténtalo más tarde.",
        "reason.invalid": "El servicio rechazó la petición: {detail}",
        "reason.auth": "La clave de la API del bot fue rechazada. Avisa al dueño del servidor.",
        "reason.storage": "No se pudo guardar la imagen. Inténtalo de nuevo.",
        "reason.shutdown": "El bot se reinició antes de crear tu imagen.",
        "reason.internal": "Algo falló al crear tu imagen.",
        "error.busy": "La base de datos del bot está ocupada. No se cobró nada; inténtalo de "
        "nuevo en un momento.",
        "model.unsupported": "El modelo {model} no está disponible aquí. Elige uno de: {choices}.",
        "aspect.unsupported_model": "{model} no puede crear imágenes {ratio}. Elige una de: "
        "{choices}.",
        "size.not_supported": "{model} no tiene opción de tamaño. Deja el tamaño vacío.",
        "size.unsupported": "{model} no puede crear imágenes de {size}. Elige uno de: {choices}.",
        "images.too_many": "{model} admite como máximo {limit} imágenes y esta petición tiene "
        "{count}. Adjunta menos imágenes.",
        "image.too_many_pixels_unknown": "{name} tiene demasiados píxeles. Redúcela por debajo "
        "de {limit_mp} megapíxeles.",
        "gen.failed_owed": "❌ {reason} Tus {coins} monedas no se pudieron devolver "
        "automáticamente porque tu saldo está en el máximo; se ha avisado al dueño del bot.",
        "gen.interrupted_owed": 'Tu imagen "{prompt}" se interrumpió por un reinicio del bot. '
        "Tus {coins} monedas no se pudieron devolver automáticamente porque tu saldo está en "
        "el máximo; se ha avisado al dueño del bot.",
        "gen.model": "Modelo",
        "gen.size": "Tamaño",
        "gen.more_images": "Más imágenes de esta respuesta",
        "reason.database": "El bot no pudo registrar tu imagen porque su base de datos estaba "
        "ocupada. Inténtalo de nuevo.",
        "reason.quota_none": "La cuenta de Google del bot no tiene cuota para generar imágenes "
        "(no tiene facturación). Se ha avisado al dueño del bot de qué debe arreglar.",
        "reason.quota_daily": "El bot ha agotado su cuota diaria de imágenes en Google. "
        "Inténtalo de nuevo mañana.",
        "reason.request.too_large": "La petición era demasiado grande para el servicio de "
        "imágenes (su límite es de 20 MB con las imágenes). Usa imágenes más pequeñas o menos "
        "imágenes.",
        "reason.request.location": "El servicio de imágenes no está disponible en la región "
        "donde funciona este bot. Se ha avisado al dueño del bot.",
        "reason.request.billing": "La cuenta de Google del bot aún no está preparada para "
        "generar imágenes. Se ha avisado al dueño del bot.",
        "reason.request.model": "No se encontró el modelo de imágenes configurado en este bot. "
        "Se ha avisado al dueño del bot.",
        "reason.request.ratio": "El servicio de imágenes no aceptó esta proporción. Elige otra.",
        "reason.request.size": "El servicio de imágenes no aceptó este tamaño. Elige otro.",
        "reason.request.too_many_images": "El servicio de imágenes no aceptó tantas imágenes. "
        "Adjunta menos.",
        "reason.request.image": "El servicio de imágenes no pudo leer una de las imágenes. "
        "Prueba con otra.",
        "block.prompt.SAFETY": "Los filtros de seguridad de Google bloquearon tu descripción "
        "antes de crear ninguna imagen. Prueba a reformularla.",
        "block.prompt.IMAGE_SAFETY": "Tu descripción o imagen se rechazó por no ser segura "
        "para generar imágenes, así que no se creó nada. Prueba otra descripción u otra imagen.",
        "block.prompt.PROHIBITED_CONTENT": "Tu descripción pide contenido que Google prohíbe, "
        "así que no se creó nada. Prueba otra cosa.",
        "block.prompt.BLOCKLIST": "Tu descripción contiene un término que el servicio de "
        "imágenes de Google no acepta, así que no se creó nada. Quítalo e inténtalo de nuevo.",
        "block.prompt.OTHER": "El servicio de imágenes de Google rechazó esta descripción sin "
        "decir por qué (a veces es el idioma). Prueba a reformularla.",
        "block.prompt.unknown": "El servicio de imágenes de Google rechazó esta descripción. "
        "Prueba a reformularla.",
        "block.output.SAFETY": "Los filtros de seguridad de Google detuvieron la respuesta. "
        "Prueba a reformular la descripción.",
        "block.output.IMAGE_SAFETY": "Los filtros de seguridad de Google bloquearon la imagen "
        "generada. Prueba otra descripción.",
        "block.output.PROHIBITED_CONTENT": "La respuesta se detuvo porque podía contener "
        "contenido prohibido. Prueba otra descripción.",
        "block.output.IMAGE_PROHIBITED_CONTENT": "La imagen generada se retuvo porque podía "
        "contener contenido prohibido. Prueba otra descripción.",
        "block.output.RECITATION": "La respuesta se detuvo por parecerse demasiado a material "
        "existente. Prueba una descripción más original.",
        "block.output.IMAGE_RECITATION": "La imagen generada se parecía demasiado a una imagen "
        "existente y se retuvo. Prueba una descripción más original.",
        "block.output.IMAGE_OTHER": "El modelo se detuvo sin imagen por un motivo que no dio. "
        "Inténtalo de nuevo, quizá reformulando la descripción.",
        "block.output.OTHER": "El modelo se detuvo por un motivo que no dio. Inténtalo de nuevo.",
        "block.output.MAX_TOKENS": "El modelo se quedó sin espacio antes de terminar la imagen. "
        "Prueba una descripción más corta o menos imágenes.",
        "block.output.MALFORMED_FUNCTION_CALL": "El modelo cometió un error interno y se "
        "rindió. Inténtalo de nuevo.",
        "block.output.UNEXPECTED_TOOL_CALL": "El modelo cometió un error interno y se rindió. "
        "Inténtalo de nuevo.",
        "block.output.TOO_MANY_TOOL_CALLS": "El modelo cometió un error interno y se rindió. "
        "Inténtalo de nuevo.",
        "block.output.LANGUAGE": "El modelo de imágenes no admite el idioma de tu descripción. "
        "Prueba a escribirla en inglés.",
        "block.output.BLOCKLIST": "La respuesta se detuvo porque contenía un término prohibido. "
        "Prueba a reformular la descripción.",
        "block.output.SPII": "La respuesta se detuvo porque podía revelar información personal "
        "sensible. Quita los datos personales e inténtalo de nuevo.",
        "block.output.unknown": "El servicio de imágenes no creó ninguna imagen para esta "
        "petición. Prueba a reformular la descripción.",
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


class _Params(dict[str, Any]):
    """Message parameters; one that is missing shows as "?" (logged), never as a raw
    `{placeholder}` template."""

    def __init__(self, key: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.key = key

    def __missing__(self, name: str) -> str:
        log.warning("message %s was shown without its {%s} parameter", self.key, name)
        return "?"


def has_message(key: str) -> bool:
    """Whether `key` is a message (in English, the fallback of every language)."""
    return key in MESSAGES[DEFAULT_LANGUAGE]


def t(language: str | None, key: str, **params: Any) -> str:
    """The message `key` in `language` (falling back to English), filled with `params`."""
    table = MESSAGES.get(language or DEFAULT_LANGUAGE, MESSAGES[DEFAULT_LANGUAGE])
    template = table.get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key) or key
    try:
        return template.format_map(_Params(key, params))
    except (IndexError, ValueError, AttributeError):
        log.warning("message %s could not be filled in", key)
        return template.replace("{", "").replace("}", "")
