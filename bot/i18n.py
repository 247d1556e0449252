"""Messages in English and Spanish, and the commands' own names, descriptions, options and
choices (`cmd.*`, `choice.*`), which cogs.translator hands to Discord as localisations.

The reply language follows each interaction's locale (`es-ES`, `es-419` -> Spanish, anything
else -> English); `users.language` keeps the latest one for messages sent outside an
interaction. Both catalogues have the same keys and placeholders (a test checks).
"""

from __future__ import annotations

import logging
import string
from typing import Any

from bot.i18n_controls import MESSAGES as CONTROLS
from bot.i18n_web import WEB

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "error.generic": "Something went wrong. Please try again.",
        "error.invalid": "That input isn't valid.",
        "error.coins": (
            "You need {cost} coins but have {balance} here. Claim /daily, ask a moderator for "
            "a /grant, or check your balance with /coins."
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
        "error.images_busy": "The bot is busy with images right now. Nothing was charged; "
        "please try again in a few seconds.",
        "settings.bad_rates": "That isn't a list of limits ({detail}). Write action=number "
        "pairs, uses a minute per member, e.g. generate=5, gallery=20.",
        "choice.rate_limits": "Per-member limits a minute",
        "gen.unsaved": "⚠️ This image couldn't be kept in your gallery ({reason}), so your "
        "{coins} coins were refunded. The picture above is yours to keep.",
        "gen.unsaved_free": "⚠️ This image couldn't be kept in your gallery ({reason}).",
        "error.missing_permissions": "You need the {permissions} permission to do that.",
        "error.unexpected": (
            "Something went wrong on our side (error id `{error_id}`). "
            "Please try again; if it keeps happening, tell the server owner this id."
        ),
        "error.guild_not_allowed": "This bot isn't available in this server.",
        "error.remix_in_server": "Reroll and Edit work in a server, where they are paid for.",
        "error.remix_other_server": (
            "This image belongs to another server: reroll or edit it there."
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
        "grant.not_admin": (
            "Only this server's moderators (Manage Server) or bot admins can grant coins here."
        ),
        "grant.global_admins_only": (
            "Coins are shared by every server here, so only the bot's admins can grant them."
        ),
        "grant.no_reason": "no reason given",
        "grant.notice_dm": (
            "🎁 You received {amount} coins in {server} from {actor} ({reason}). "
            "Your balance there is now {balance}."
        ),
        "grant.notice_channel": "🎁 you received {amount} coins from {actor} ({reason}).",
        "grant.done": "Granted {amount} coins to {user}. Their balance is now {balance}.",
        "grant.overflow": "That grant would take {user}'s balance past the maximum of {max} "
        "coins (coins held by images in progress count too). Grant at most {room}.",
        "coins.other_forbidden": "Only this server's moderators can see another member's coins.",
        "coins.other_global": (
            "Coins are shared by every server here, so only the bot's admins can see "
            "another member's coins."
        ),
        "coins.no_wallet_here": "{user} has no coins in this server yet.",
        "coins.wallets": "Balances by server",
        "coins.no_wallets": "No coins yet: use the bot in a server to get your starter coins.",
        "coins.carried_over": "From before servers had wallets (goes to the next server you use)",
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
        "model.retired": "{model} is no longer offered by Google. The bot's owner has been "
        "told; nothing was charged.",
        "model.none_usable": "No image model can be used on this bot right now. The bot's "
        "owner has been told; nothing was charged.",
        "reason.model_retired": "Google retired {model} before your image was made. The bot's "
        "owner has been told.",
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
        "gallery.dm_own_only": "In direct messages you can only see your own gallery.",
        "gallery.bad_id": "Image ids have at least {length} characters, as shown under each image.",
        "gallery.ambiguous_id": "More than one image starts with {id}. Type more of its id.",
        "kind.GENERATED": "Generated",
        "kind.UPLOADED": "Uploaded",
        "daily.done": "📅 You claimed {amount} coins. Your balance here is {balance}. "
        "Your next claim opens <t:{at}:R>.",
        "daily.too_soon": "You already claimed your daily coins here. The next claim opens "
        "<t:{at}:R> (<t:{at}:f>).",
        "daily.disabled": "This server has no daily coins.",
        "daily.overflow": "Your balance here is near the maximum of {max} coins (coins held by "
        "images in progress count too), so /daily can't add more.",
        "settings.title": "Settings of this server",
        "settings.not_allowed": "Only this server's moderators (Manage Server) or bot admins "
        "can use /settings.",
        "settings.global_economy": "Coins are shared by every server here, so starter and "
        "daily coins are set by the bot's host for all of them.",
        "settings.unknown": "There is no setting called {setting}.",
        "settings.not_a_number": "“{value}” isn't a whole number. Type digits only, e.g. 50.",
        "settings.out_of_range": "Pick a whole number from {low} to {high}.",
        "settings.not_boolean": "“{value}” isn't yes or no.",
        "settings.unknown_channel": "{value} isn't a channel of this server. Mention channels "
        "like #art, or type all.",
        "settings.too_many_channels": "At most {limit} channels.",
        "settings.one_role": "Give one role (mention it like @artists), or everyone.",
        "settings.unknown_role": "{value} isn't a role of this server. Mention it like "
        "@artists, or type everyone.",
        "settings.wrong_channel": "Images are made here only in {channels}.",
        "settings.role_required": "You need the {role} role to make images here.",
        "settings.all_channels": "all channels",
        "settings.everyone": "everyone",
        "settings.yes": "yes",
        "settings.no": "no",
        "settings.source.server": "set for this server",
        "settings.source.default": "default",
        "settings.changed": "{setting} is now {value} ({source}).",
        "settings.history_title": "Setting changes",
        "settings.no_history": "Nothing has been changed yet.",
        "help.title": "🍌 Nano Banana",
        "help.intro": "Make and edit images with Google's Nano Banana model. Each image costs "
        "coins from your wallet in this server.",
        "help.commands": "Commands",
        "help.moderators": "For moderators",
        "help.costs": "Here",
        "help.costs_here": "An image costs {generation} coins, an upload {upload}. {daily}",
        "help.daily": "/daily gives {coins} coins every 24 hours.",
        "help.daily_off": "This server has no daily coins.",
        "help.balance": "Your balance",
        "help.balance_value": "🪙 {coins}",
        "help.balance_dm": "Each server has its own wallet: see /coins.",
        "help.balance_new": "🪙 {coins} to start with, on your first image",
        "help.queue": "Queue",
        "help.queue_value": "{waiting} waiting, {running} being made",
        "help.docs": "For server owners",
        "help.docs_plain": "See the README: {sections}.",
        "help.docs.setup": "Set-up",
        "help.docs.servers": "Servers, economy and permissions",
        "help.docs.settings": "Settings",
        "help.docs.commands": "Commands",
    },
    "es": {
        "error.generic": "Algo salió mal. Inténtalo de nuevo.",
        "error.invalid": "Ese dato no es válido.",
        "error.coins": (
            "Necesitas {cost} monedas pero aquí tienes {balance}. Reclama /daily, pide a un "
            "moderador un /grant o consulta tu saldo con /coins."
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
        "error.images_busy": "El bot está ocupado con imágenes ahora mismo. No se cobró "
        "nada; inténtalo de nuevo en unos segundos.",
        "settings.bad_rates": "Eso no es una lista de límites ({detail}). Escribe pares "
        "acción=número, usos por minuto y miembro, p. ej. generate=5, gallery=20.",
        "choice.rate_limits": "Límites por miembro y minuto",
        "gen.unsaved": "⚠️ Esta imagen no pudo guardarse en tu galería ({reason}), así que se "
        "te devolvieron tus {coins} monedas. La imagen de arriba es tuya.",
        "gen.unsaved_free": "⚠️ Esta imagen no pudo guardarse en tu galería ({reason}).",
        "error.missing_permissions": "Necesitas el permiso {permissions} para hacer eso.",
        "error.unexpected": (
            "Algo falló por nuestra parte (id de error `{error_id}`). Inténtalo de nuevo; si "
            "sigue pasando, comunica este id al dueño del servidor."
        ),
        "error.guild_not_allowed": "Este bot no está disponible en este servidor.",
        "error.remix_in_server": "Repetir y Editar funcionan en un servidor, donde se pagan.",
        "error.remix_other_server": ("Esta imagen es de otro servidor: repítela o edítala allí."),
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
        "grant.not_admin": "Solo los moderadores de este servidor (Gestionar servidor) o los "
        "administradores del bot pueden dar monedas aquí.",
        "grant.global_admins_only": (
            "Las monedas se comparten entre todos los servidores, así que solo los "
            "administradores del bot pueden darlas."
        ),
        "grant.no_reason": "sin motivo",
        "grant.notice_dm": (
            "🎁 Recibiste {amount} monedas en {server} de {actor} ({reason}). "
            "Tu saldo allí ahora es {balance}."
        ),
        "grant.notice_channel": "🎁 recibiste {amount} monedas de {actor} ({reason}).",
        "grant.done": "Se dieron {amount} monedas a {user}. Su saldo ahora es {balance}.",
        "grant.overflow": "Esa concesión superaría el saldo máximo de {user}, {max} monedas "
        "(cuentan también las monedas retenidas por imágenes en curso). Da como máximo {room}.",
        "coins.other_forbidden": (
            "Solo los moderadores de este servidor pueden ver las monedas de otro miembro."
        ),
        "coins.other_global": (
            "Las monedas se comparten entre todos los servidores, así que solo los "
            "administradores del bot pueden ver las de otro miembro."
        ),
        "coins.no_wallet_here": "{user} aún no tiene monedas en este servidor.",
        "coins.wallets": "Saldo por servidor",
        "coins.no_wallets": "Aún no tienes monedas: usa el bot en un servidor para recibir las "
        "de bienvenida.",
        "coins.carried_over": "De antes de que cada servidor tuviera monedero (pasa al próximo "
        "servidor que uses)",
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
        "model.retired": "Google ya no ofrece {model}. Se ha avisado al dueño del bot; no se "
        "cobró nada.",
        "model.none_usable": "Ahora mismo no se puede usar ningún modelo de imágenes en este "
        "bot. Se ha avisado al dueño del bot; no se cobró nada.",
        "reason.model_retired": "Google retiró {model} antes de que se creara tu imagen. Se ha "
        "avisado al dueño del bot.",
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
        "gallery.dm_own_only": "En mensajes directos solo puedes ver tu propia galería.",
        "gallery.bad_id": "Los ids de imagen tienen al menos {length} caracteres, como se "
        "muestran bajo cada imagen.",
        "gallery.ambiguous_id": "Más de una imagen empieza por {id}. Escribe más de su id.",
        "kind.GENERATED": "Generada",
        "kind.UPLOADED": "Subida",
        "daily.done": "📅 Reclamaste {amount} monedas. Tu saldo aquí es {balance}. "
        "Podrás volver a reclamar <t:{at}:R>.",
        "daily.too_soon": "Ya reclamaste tus monedas diarias aquí. Podrás volver a reclamar "
        "<t:{at}:R> (<t:{at}:f>).",
        "daily.disabled": "Este servidor no da monedas diarias.",
        "daily.overflow": "Tu saldo aquí está cerca del máximo de {max} monedas (cuentan también "
        "las retenidas por imágenes en curso), así que /daily no puede añadir más.",
        "settings.title": "Ajustes de este servidor",
        "settings.not_allowed": "Solo los moderadores de este servidor (Gestionar servidor) o "
        "los administradores del bot pueden usar /settings.",
        "settings.global_economy": "Las monedas se comparten entre todos los servidores, así "
        "que las de bienvenida y las diarias las fija quien aloja el bot para todos.",
        "settings.unknown": "No existe ningún ajuste llamado {setting}.",
        "settings.not_a_number": "«{value}» no es un número entero. Escribe solo cifras, "
        "p. ej. 50.",
        "settings.out_of_range": "Elige un número entero de {low} a {high}.",
        "settings.not_boolean": "«{value}» no es sí o no.",
        "settings.unknown_channel": "{value} no es un canal de este servidor. Menciona canales "
        "como #arte, o escribe todos.",
        "settings.too_many_channels": "Como mucho {limit} canales.",
        "settings.one_role": "Indica un rol (menciónalo como @artistas), o everyone.",
        "settings.unknown_role": "{value} no es un rol de este servidor. Menciónalo como "
        "@artistas, o escribe everyone.",
        "settings.wrong_channel": "Aquí las imágenes solo se crean en {channels}.",
        "settings.role_required": "Necesitas el rol {role} para crear imágenes aquí.",
        "settings.all_channels": "todos los canales",
        "settings.everyone": "todos",
        "settings.yes": "sí",
        "settings.no": "no",
        "settings.source.server": "fijado en este servidor",
        "settings.source.default": "por defecto",
        "settings.changed": "{setting} ahora es {value} ({source}).",
        "settings.history_title": "Cambios de ajustes",
        "settings.no_history": "Aún no se ha cambiado nada.",
        "help.title": "🍌 Nano Banana",
        "help.intro": "Crea y edita imágenes con el modelo Nano Banana de Google. Cada imagen "
        "cuesta monedas de tu monedero en este servidor.",
        "help.commands": "Comandos",
        "help.moderators": "Para moderadores",
        "help.costs": "Aquí",
        "help.costs_here": "Una imagen cuesta {generation} monedas, una subida {upload}. {daily}",
        "help.daily": "/daily da {coins} monedas cada 24 horas.",
        "help.daily_off": "Este servidor no da monedas diarias.",
        "help.balance": "Tu saldo",
        "help.balance_value": "🪙 {coins}",
        "help.balance_dm": "Cada servidor tiene su propio monedero: mira /coins.",
        "help.balance_new": "🪙 {coins} para empezar, con tu primera imagen",
        "help.queue": "Cola",
        "help.queue_value": "{waiting} en espera, {running} en curso",
        "help.docs": "Para dueños de servidores",
        "help.docs_plain": "Consulta el README: {sections}.",
        "help.docs.setup": "Instalación",
        "help.docs.servers": "Servidores, economía y permisos",
        "help.docs.settings": "Ajustes",
        "help.docs.commands": "Comandos",
    },
}

# The commands' names, descriptions, option names and descriptions, and choices. English is what
# the code registers; the translator sends the other languages as Discord localisations. Names
# are lowercase without spaces (Discord's rule for command and option names).
COMMANDS: dict[str, dict[str, str]] = {
    "en": {
        "cmd.generate.name": "generate",
        "cmd.generate.description": "Create an image, or edit yours, with Nano Banana",
        "cmd.generate.opt.prompt.name": "prompt",
        "cmd.generate.opt.prompt.description": "What to create, or how to change the attached "
        "images",
        "cmd.generate.opt.aspect_ratio.name": "aspect_ratio",
        "cmd.generate.opt.aspect_ratio.description": "Shape of the image (default 1:1)",
        "cmd.generate.opt.image.name": "image",
        "cmd.generate.opt.image.description": "An image to edit (PNG, JPEG or WebP)",
        "cmd.generate.opt.image2.name": "image2",
        "cmd.generate.opt.image2.description": "A second image to combine with the first",
        "cmd.generate.opt.model.name": "model",
        "cmd.generate.opt.model.description": "Which image model; cost shown per model",
        "cmd.generate.opt.size.name": "size",
        "cmd.generate.opt.size.description": "Resolution (default 1K); cost shown per size",
        "cmd.upload.name": "upload",
        "cmd.upload.description": "Add one of your images to your gallery",
        "cmd.upload.opt.image.name": "image",
        "cmd.upload.opt.image.description": "A PNG, JPEG or WebP image",
        "cmd.upload.opt.title.name": "title",
        "cmd.upload.opt.title.description": "A short title (optional)",
        "cmd.upload.opt.description.name": "description",
        "cmd.upload.opt.description.description": "A description (optional)",
        "cmd.gallery.name": "gallery",
        "cmd.gallery.description": "Browse your images or another member's",
        "cmd.gallery.opt.user.name": "user",
        "cmd.gallery.opt.user.description": "Whose gallery (default: yours)",
        "cmd.gallery.opt.kind.name": "kind",
        "cmd.gallery.opt.kind.description": "Which images to show",
        "cmd.gallery.opt.image.name": "image",
        "cmd.gallery.opt.image.description": "Open one image by its id (as shown under it)",
        "cmd.coins.name": "coins",
        "cmd.coins.description": "Your coins here, your images and recent activity",
        "cmd.coins.opt.user.name": "user",
        "cmd.coins.opt.user.description": "Another member (moderators only)",
        "cmd.daily.name": "daily",
        "cmd.daily.description": "Claim this server's daily coins",
        "cmd.grant.name": "grant",
        "cmd.grant.description": "Give coins to a member (moderators)",
        "cmd.grant.opt.user.name": "user",
        "cmd.grant.opt.user.description": "Who receives the coins",
        "cmd.grant.opt.amount.name": "amount",
        "cmd.grant.opt.amount.description": "How many coins (1 or more)",
        "cmd.grant.opt.reason.name": "reason",
        "cmd.grant.opt.reason.description": "Why (they are told, and it shows in their history)",
        "cmd.settings.name": "settings",
        "cmd.settings.description": "This server's settings (moderators)",
        "cmd.settings.show.name": "show",
        "cmd.settings.show.description": "The settings in force here and where each comes from",
        "cmd.settings.set.name": "set",
        "cmd.settings.set.description": "Change a setting for this server",
        "cmd.settings.set.opt.setting.name": "setting",
        "cmd.settings.set.opt.setting.description": "Which setting",
        "cmd.settings.set.opt.value.name": "value",
        "cmd.settings.set.opt.value.description": "A number, yes/no, #channels, or @role "
        "(all/everyone: no limit)",
        "cmd.settings.reset.name": "reset",
        "cmd.settings.reset.description": "Put a setting back to the bot's default",
        "cmd.settings.reset.opt.setting.name": "setting",
        "cmd.settings.reset.opt.setting.description": "Which setting",
        "cmd.settings.history.name": "history",
        "cmd.settings.history.description": "Who changed which setting, latest first",
        "cmd.help.name": "help",
        "cmd.help.description": "What the bot does and costs here, and your balance",
        "choice.all": "all",
        "choice.generated": "generated",
        "choice.uploaded": "uploaded",
        "choice.generation_cost": "Cost per generated image",
        "choice.upload_cost": "Cost per upload",
        "choice.starter_coins": "Starter coins",
        "choice.daily_coins": "Daily coins",
        "choice.jobs_per_member": "Images at once per member",
        "choice.channel_ids": "Channels for /generate and /upload",
        "choice.generate_role_id": "Role needed to generate",
        "choice.public_results": "Results shown to everyone",
    },
    "es": {
        "cmd.generate.name": "generar",
        "cmd.generate.description": "Crea una imagen, o edita las tuyas, con Nano Banana",
        "cmd.generate.opt.prompt.name": "indicación",
        "cmd.generate.opt.prompt.description": "Qué crear, o cómo cambiar las imágenes adjuntas",
        "cmd.generate.opt.aspect_ratio.name": "proporción",
        "cmd.generate.opt.aspect_ratio.description": "Forma de la imagen (por defecto 1:1)",
        "cmd.generate.opt.image.name": "imagen",
        "cmd.generate.opt.image.description": "Una imagen para editar (PNG, JPEG o WebP)",
        "cmd.generate.opt.image2.name": "imagen2",
        "cmd.generate.opt.image2.description": "Una segunda imagen para combinar con la primera",
        "cmd.generate.opt.model.name": "modelo",
        "cmd.generate.opt.model.description": "Qué modelo de imagen; el coste se ve en cada uno",
        "cmd.generate.opt.size.name": "tamaño",
        "cmd.generate.opt.size.description": "Resolución (por defecto 1K); el coste se ve en "
        "cada una",
        "cmd.upload.name": "subir",
        "cmd.upload.description": "Añade una de tus imágenes a tu galería",
        "cmd.upload.opt.image.name": "imagen",
        "cmd.upload.opt.image.description": "Una imagen PNG, JPEG o WebP",
        "cmd.upload.opt.title.name": "título",
        "cmd.upload.opt.title.description": "Un título corto (opcional)",
        "cmd.upload.opt.description.name": "descripción",
        "cmd.upload.opt.description.description": "Una descripción (opcional)",
        "cmd.gallery.name": "galería",
        "cmd.gallery.description": "Mira tus imágenes o las de otro miembro",
        "cmd.gallery.opt.user.name": "usuario",
        "cmd.gallery.opt.user.description": "De quién es la galería (por defecto: tuya)",
        "cmd.gallery.opt.kind.name": "tipo",
        "cmd.gallery.opt.kind.description": "Qué imágenes mostrar",
        "cmd.gallery.opt.image.name": "imagen",
        "cmd.gallery.opt.image.description": "Abre una imagen por su id (el que aparece debajo)",
        "cmd.coins.name": "monedas",
        "cmd.coins.description": "Tus monedas aquí, tus imágenes y tu actividad reciente",
        "cmd.coins.opt.user.name": "usuario",
        "cmd.coins.opt.user.description": "Otro miembro (solo moderadores)",
        "cmd.daily.name": "diario",
        "cmd.daily.description": "Reclama las monedas diarias de este servidor",
        "cmd.grant.name": "otorgar",
        "cmd.grant.description": "Da monedas a un miembro (moderadores)",
        "cmd.grant.opt.user.name": "usuario",
        "cmd.grant.opt.user.description": "Quién recibe las monedas",
        "cmd.grant.opt.amount.name": "cantidad",
        "cmd.grant.opt.amount.description": "Cuántas monedas (1 o más)",
        "cmd.grant.opt.reason.name": "motivo",
        "cmd.grant.opt.reason.description": "Por qué (se le avisa y aparece en su historial)",
        "cmd.settings.name": "ajustes",
        "cmd.settings.description": "Los ajustes de este servidor (moderadores)",
        "cmd.settings.show.name": "ver",
        "cmd.settings.show.description": "Los ajustes vigentes aquí y de dónde sale cada uno",
        "cmd.settings.set.name": "cambiar",
        "cmd.settings.set.description": "Cambia un ajuste para este servidor",
        "cmd.settings.set.opt.setting.name": "ajuste",
        "cmd.settings.set.opt.setting.description": "Qué ajuste",
        "cmd.settings.set.opt.value.name": "valor",
        "cmd.settings.set.opt.value.description": "Un número, sí/no, #canales o @rol "
        "(todos/everyone: sin límite)",
        "cmd.settings.reset.name": "restablecer",
        "cmd.settings.reset.description": "Devuelve un ajuste al valor por defecto del bot",
        "cmd.settings.reset.opt.setting.name": "ajuste",
        "cmd.settings.reset.opt.setting.description": "Qué ajuste",
        "cmd.settings.history.name": "historial",
        "cmd.settings.history.description": "Quién cambió qué ajuste, lo último primero",
        "cmd.help.name": "ayuda",
        "cmd.help.description": "Qué hace el bot y cuánto cuesta aquí, y tu saldo",
        "choice.all": "todas",
        "choice.generated": "generadas",
        "choice.uploaded": "subidas",
        "choice.generation_cost": "Coste por imagen generada",
        "choice.upload_cost": "Coste por subida",
        "choice.starter_coins": "Monedas de bienvenida",
        "choice.daily_coins": "Monedas diarias",
        "choice.jobs_per_member": "Imágenes a la vez por miembro",
        "choice.channel_ids": "Canales para /generate y /upload",
        "choice.generate_role_id": "Rol necesario para generar",
        "choice.public_results": "Resultados visibles para todos",
    },
}
for _language, _entries in COMMANDS.items():
    MESSAGES[_language].update(_entries)
for _language, _entries in CONTROLS.items():
    MESSAGES[_language].update(_entries)
for _language, _entries in WEB.items():
    MESSAGES[_language].update(_entries)


def language_from_locale(locale: str | None) -> str:
    """`es-ES` -> `es`; anything we have no messages for -> English."""
    if not locale:
        return DEFAULT_LANGUAGE
    language = str(locale).split("-")[0].lower()
    return language if language in MESSAGES else DEFAULT_LANGUAGE


def translation(language: str, key: str) -> str | None:
    """The catalogue's text for `key` in exactly `language`, or None (no fallback)."""
    return MESSAGES.get(language, {}).get(key)


def placeholders(template: str) -> set[str]:
    """The `{names}` a message fills in."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


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
