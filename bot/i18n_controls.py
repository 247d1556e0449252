"""Messages and command texts of the owner controls (budgets, /usage, blocklists, member
blocks, the moderation log, the audit), in English and Spanish; `bot.i18n` merges them into
its catalogue."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # Budgets
        "budget.global_month": "This bot has reached its monthly image budget, so no new "
        "images can be made right now. It resets <t:{at}:R> (<t:{at}:f>). No coins were taken.",
        "budget.server_month": "This server has reached its monthly image budget. It resets "
        "<t:{at}:R> (<t:{at}:f>). No coins were taken.",
        "budget.server_day": "This server has made its {limit} images for today. More can be "
        "made <t:{at}:R> (<t:{at}:f>). No coins were taken.",
        "budget.notice.server_month": "💸 This server has used {percent}% of its monthly image "
        "budget ({used} of {limit}). It resets <t:{at}:R>.",
        "budget.notice.server_day": "🖼️ This server has made {used} of its {limit} images for "
        "today ({percent}%). The count resets <t:{at}:R>.",
        "budget.notice.global_month": "💸 The bot has used {percent}% of its monthly budget "
        "(MONTHLY_BUDGET_USD: {used} of {limit}). It resets <t:{at}:R>.",
        "budget.notice.full": "New images are refused until then.",
        "models.notice.retired": "⚠️ Google retired the image model {name} (`{model}`): it "
        "answered 404 NOT_FOUND. The bot now uses {replacement}.",
        "models.notice.retired_refused": "⚠️ Google retired the image model {name} "
        "(`{model}`): it answered 404 NOT_FOUND. Requests for it are refused, free of charge, "
        "until the bot's owner changes NANOBANANA_MODEL or NANOBANANA_MODELS ({hint}).",
        "models.notice.replaced": "⚠️ The bot's settings name {name} (`{model}`), which Google "
        "shut down on {date}. The bot uses its successor {replacement} instead; update "
        "NANOBANANA_MODEL (or set it to auto) to silence this.",
        "models.notice.ending": "⚠️ Google says the image model {name} (`{model}`) is ending: "
        "{detail}. {hint}",
        "models.notice.none_usable": "⚠️ No configured image model can be used with the bot's "
        "Gemini key: image requests are refused, free of charge. Run `python -m bot check` "
        "to see the models the key can use.",
        "models.notice.hint_successor": "Google's recommended successor is {successor}",
        "models.notice.hint_auto": "NANOBANANA_MODEL=auto picks a model the key can use",
        # Settings of the owner controls
        "settings.not_dollars": "“{value}” isn't a dollar amount. Type it like 25 or 12.50, or "
        "none for no budget.",
        "settings.dollars_out_of_range": "Pick an amount from $0 to ${high}, or none.",
        "settings.one_channel": "Give one channel (mention it like #mod-log), or none.",
        "settings.log_channel_no_access": "I can't post in {channel}: I'm missing {missing} "
        "there. Give me those permissions in that channel, then try again.",
        "settings.no_cap": "no cap",
        "settings.no_log": "no log",
        # Blocklist
        "blocklist.prompt_blocked": "Your prompt uses words this server doesn't allow. Change "
        "it and try again. No coins were taken.",
        "blocklist.too_long": "An entry can be at most {limit} characters.",
        "blocklist.empty_word": "That entry is empty: give a word, a phrase or a pattern.",
        "blocklist.bad_pattern": "That pattern isn't valid ({error}). Patterns use RE2 syntax "
        "(no look-arounds or back-references).",
        "blocklist.pattern_too_costly": "That pattern is too costly to check (too much "
        "repetition). Write a simpler one.",
        "blocklist.pattern_matches_everything": "That pattern matches every prompt (even an "
        "empty one). Write one that needs at least one character.",
        "blocklist.full": "The blocklist is full ({limit} entries). Remove some first.",
        "blocklist.already": "That entry is already on the blocklist.",
        "blocklist.not_listed": "That isn't on the blocklist. See /settings blocklist list.",
        "blocklist.added": "Added to the blocklist: `{entry}` ({kind}). Prompts and edit "
        "instructions containing it are refused before any charge.",
        "blocklist.removed": "Removed from the blocklist: `{entry}`.",
        "blocklist.title": "Blocklist of this server",
        "blocklist.empty": "The blocklist is empty.",
        "blocklist.word": "word",
        "blocklist.pattern": "pattern",
        # Members
        "moderation.not_allowed": "Only this server's moderators (Manage Server) or bot admins "
        "can do that.",
        "moderation.member_blocked": "You can't make or upload images in this server. Reason: "
        "{reason}",
        "moderation.member_blocked_until": "You can't make or upload images in this server until "
        "<t:{at}:f>. Reason: {reason}",
        "moderation.nsfw_only": "In this server images are made only in age-restricted channels.",
        "moderation.bad_duration": "“{value}” isn't a duration. Use e.g. 30m, 12h, 7d or 2w, or "
        "leave it empty for no end.",
        "moderation.reason_needed": "Give a reason: the member will see it.",
        "moderation.reason_too_long": "The reason can be at most {limit} characters.",
        "moderation.cannot_block": "You can't block yourself or a bot.",
        "moderation.not_blocked": "That member isn't blocked here.",
        "moderation.blocked": "{member} can't make or upload images here {until}. Reason: {reason}",
        "moderation.until": "until <t:{at}:f>",
        "moderation.forever": "until unblocked",
        "moderation.unblocked": "{member} can make and upload images here again.",
        "moderation.blocked_title": "Blocked members",
        "moderation.none_blocked": "Nobody is blocked here.",
        # The moderation log
        "modlog.generated": "New image by {member}",
        "modlog.uploaded": "New upload by {member}",
        "modlog.prompt": "Prompt",
        "modlog.title": "Title",
        "modlog.cost": "Cost",
        "modlog.delete": "Delete",
        "modlog.deleted": "🗑️ Deleted by {moderator}.",
        # Audit
        "audit.title": "Moderation actions",
        "audit.empty": "No moderation action yet.",
        "audit.blocklist_add": "added `{entry}` to the blocklist",
        "audit.blocklist_remove": "removed `{entry}` from the blocklist",
        "audit.member_block": "blocked {target}",
        "audit.member_unblock": "unblocked {target}",
        "audit.image_delete": "deleted image `{image}` of {target}",
        "audit.reason": "reason: {reason}",
        # /usage
        "usage.not_allowed": "Only this server's moderators (Manage Server) see its usage; bot "
        "admins see every server's.",
        "usage.bad_server": "“{value}” isn't a server id. Give a server id, or all.",
        "usage.title_server": "Image usage of this server",
        "usage.title_all": "Image usage of every server",
        "usage.title_one": "Image usage of server {guild}",
        "usage.line": "{images} images · {cost}",
        "usage.coins": "{coins} coins paid",
        "usage.in_flight": "{jobs} in progress",
        "usage.today": "Today",
        "usage.this_month": "This month",
        "usage.last_month": "Last month",
        "usage.by_model": "This month by model and size",
        "usage.top_members": "Top members this month",
        "usage.by_server": "Servers this month",
        "usage.budgets": "Budgets left",
        "usage.budget_line": "{name}: {left} left of {limit} · resets <t:{at}:R>",
        "usage.cap.global": "Whole bot, this month",
        "usage.cap.server_month": "This server, this month",
        "usage.cap.server_day": "This server, today (images)",
        "usage.no_budgets": "No budget is set.",
        "usage.none": "Nothing yet.",
        "usage.footer": "Estimated from Google's list prices of {prices}; not an invoice.",
        "usage.chart_title": "Last 30 days",
        # Command texts
        "cmd.usage.name": "usage",
        "cmd.usage.description": "Images and their estimated cost, with a chart (moderators)",
        "cmd.usage.opt.server.name": "server",
        "cmd.usage.opt.server.description": "Bot admins: a server id, or all",
        "cmd.settings.audit.name": "audit",
        "cmd.settings.audit.description": "Moderation actions: who did what, when and why",
        "cmd.settings.blocklist.name": "blocklist",
        "cmd.settings.blocklist.description": "Words and patterns kept out of prompts",
        "cmd.settings.blocklist.add.name": "add",
        "cmd.settings.blocklist.add.description": "Block a word, phrase or pattern",
        "cmd.settings.blocklist.add.opt.entry.name": "entry",
        "cmd.settings.blocklist.add.opt.entry.description": "A word or phrase, or an RE2 pattern",
        "cmd.settings.blocklist.add.opt.pattern.name": "pattern",
        "cmd.settings.blocklist.add.opt.pattern.description": "The entry is a regular "
        "expression (RE2)",
        "cmd.settings.blocklist.remove.name": "remove",
        "cmd.settings.blocklist.remove.description": "Unblock a word, phrase or pattern",
        "cmd.settings.blocklist.remove.opt.entry.name": "entry",
        "cmd.settings.blocklist.remove.opt.entry.description": "The entry as listed",
        "cmd.settings.blocklist.list.name": "list",
        "cmd.settings.blocklist.list.description": "Show the blocklist",
        "cmd.settings.block.name": "block",
        "cmd.settings.block.description": "Stop a member from making and uploading images here",
        "cmd.settings.block.opt.member.name": "member",
        "cmd.settings.block.opt.member.description": "Who",
        "cmd.settings.block.opt.reason.name": "reason",
        "cmd.settings.block.opt.reason.description": "Why (the member sees it)",
        "cmd.settings.block.opt.duration.name": "duration",
        "cmd.settings.block.opt.duration.description": "For how long, e.g. 12h, 7d (empty: "
        "until unblocked)",
        "cmd.settings.unblock.name": "unblock",
        "cmd.settings.unblock.description": "Let a blocked member make images again",
        "cmd.settings.unblock.opt.member.name": "member",
        "cmd.settings.unblock.opt.member.description": "Who",
        "cmd.settings.unblock.opt.reason.name": "reason",
        "cmd.settings.unblock.opt.reason.description": "Why (for the audit)",
        "cmd.settings.blocked.name": "blocked",
        "cmd.settings.blocked.description": "Members blocked here, and why",
        "choice.daily_image_cap": "Images per day (server)",
        "choice.monthly_budget_usd": "Monthly budget in USD (server)",
        "choice.mod_log_channel_id": "Moderation log channel",
        "choice.nsfw_only": "Images only in age-restricted channels",
        "help.docs.owner": "Owner controls",
    },
    "es": {
        "budget.global_month": "El bot ha alcanzado su presupuesto mensual de imágenes, así que "
        "ahora no se pueden crear más. Se renueva <t:{at}:R> (<t:{at}:f>). No se cobró nada.",
        "budget.server_month": "Este servidor ha alcanzado su presupuesto mensual de imágenes. "
        "Se renueva <t:{at}:R> (<t:{at}:f>). No se cobró nada.",
        "budget.server_day": "Este servidor ya ha creado sus {limit} imágenes de hoy. Podrá "
        "crear más <t:{at}:R> (<t:{at}:f>). No se cobró nada.",
        "budget.notice.server_month": "💸 Este servidor ha usado el {percent}% de su "
        "presupuesto mensual de imágenes ({used} de {limit}). Se renueva <t:{at}:R>.",
        "budget.notice.server_day": "🖼️ Este servidor ha creado {used} de sus {limit} imágenes "
        "de hoy ({percent}%). La cuenta se renueva <t:{at}:R>.",
        "budget.notice.global_month": "💸 El bot ha usado el {percent}% de su presupuesto "
        "mensual (MONTHLY_BUDGET_USD: {used} de {limit}). Se renueva <t:{at}:R>.",
        "budget.notice.full": "Hasta entonces se rechazan las imágenes nuevas.",
        "models.notice.retired": "⚠️ Google retiró el modelo de imágenes {name} (`{model}`): "
        "respondió 404 NOT_FOUND. El bot usa ahora {replacement}.",
        "models.notice.retired_refused": "⚠️ Google retiró el modelo de imágenes {name} "
        "(`{model}`): respondió 404 NOT_FOUND. Las peticiones para él se rechazan, sin coste, "
        "hasta que el dueño del bot cambie NANOBANANA_MODEL o NANOBANANA_MODELS ({hint}).",
        "models.notice.replaced": "⚠️ La configuración del bot nombra {name} (`{model}`), que "
        "Google cerró el {date}. El bot usa en su lugar su sucesor {replacement}; actualiza "
        "NANOBANANA_MODEL (o ponlo en auto) para quitar este aviso.",
        "models.notice.ending": "⚠️ Google dice que el modelo de imágenes {name} (`{model}`) "
        "termina: {detail}. {hint}",
        "models.notice.none_usable": "⚠️ Ningún modelo de imágenes configurado funciona con la "
        "clave de Gemini del bot: las peticiones de imágenes se rechazan, sin coste. Ejecuta "
        "`python -m bot check` para ver los modelos que puede usar la clave.",
        "models.notice.hint_successor": "El sucesor que recomienda Google es {successor}",
        "models.notice.hint_auto": "NANOBANANA_MODEL=auto elige un modelo que la clave pueda usar",
        "settings.not_dollars": "«{value}» no es una cantidad en dólares. Escríbela como 25 o "
        "12.50, o none para no tener presupuesto.",
        "settings.dollars_out_of_range": "Elige una cantidad de $0 a ${high}, o none.",
        "settings.one_channel": "Indica un canal (menciónalo como #registro), o none.",
        "settings.log_channel_no_access": "No puedo publicar en {channel}: me falta {missing} "
        "allí. Dame esos permisos en ese canal y vuelve a intentarlo.",
        "settings.no_cap": "sin límite",
        "settings.no_log": "sin registro",
        "blocklist.prompt_blocked": "Tu indicación usa palabras que este servidor no permite. "
        "Cámbiala y vuelve a intentarlo. No se cobró nada.",
        "blocklist.too_long": "Una entrada puede tener como mucho {limit} caracteres.",
        "blocklist.empty_word": "Esa entrada está vacía: indica una palabra, una frase o un "
        "patrón.",
        "blocklist.bad_pattern": "Ese patrón no es válido ({error}). Los patrones usan la "
        "sintaxis RE2 (sin look-arounds ni referencias hacia atrás).",
        "blocklist.pattern_too_costly": "Ese patrón es demasiado costoso de comprobar "
        "(demasiadas repeticiones). Escribe uno más sencillo.",
        "blocklist.pattern_matches_everything": "Ese patrón coincide con cualquier indicación "
        "(incluso vacía). Escribe uno que necesite al menos un carácter.",
        "blocklist.full": "La lista de bloqueo está llena ({limit} entradas). Quita alguna "
        "primero.",
        "blocklist.already": "Esa entrada ya está en la lista de bloqueo.",
        "blocklist.not_listed": "Eso no está en la lista de bloqueo. Mira /settings blocklist "
        "list.",
        "blocklist.added": "Añadido a la lista de bloqueo: `{entry}` ({kind}). Las indicaciones "
        "e instrucciones de edición que lo contengan se rechazan antes de cobrar.",
        "blocklist.removed": "Quitado de la lista de bloqueo: `{entry}`.",
        "blocklist.title": "Lista de bloqueo de este servidor",
        "blocklist.empty": "La lista de bloqueo está vacía.",
        "blocklist.word": "palabra",
        "blocklist.pattern": "patrón",
        "moderation.not_allowed": "Solo los moderadores de este servidor (Gestionar servidor) o "
        "los administradores del bot pueden hacer eso.",
        "moderation.member_blocked": "No puedes crear ni subir imágenes en este servidor. "
        "Motivo: {reason}",
        "moderation.member_blocked_until": "No puedes crear ni subir imágenes en este servidor "
        "hasta <t:{at}:f>. Motivo: {reason}",
        "moderation.nsfw_only": "En este servidor las imágenes solo se crean en canales con "
        "restricción de edad.",
        "moderation.bad_duration": "«{value}» no es una duración. Usa p. ej. 30m, 12h, 7d o 2w, "
        "o déjalo vacío para que no acabe.",
        "moderation.reason_needed": "Indica un motivo: el miembro lo verá.",
        "moderation.reason_too_long": "El motivo puede tener como mucho {limit} caracteres.",
        "moderation.cannot_block": "No puedes bloquearte a ti ni a un bot.",
        "moderation.not_blocked": "Ese miembro no está bloqueado aquí.",
        "moderation.blocked": "{member} no puede crear ni subir imágenes aquí {until}. Motivo: "
        "{reason}",
        "moderation.until": "hasta <t:{at}:f>",
        "moderation.forever": "hasta que se le desbloquee",
        "moderation.unblocked": "{member} vuelve a poder crear y subir imágenes aquí.",
        "moderation.blocked_title": "Miembros bloqueados",
        "moderation.none_blocked": "No hay nadie bloqueado aquí.",
        "modlog.generated": "Imagen nueva de {member}",
        "modlog.uploaded": "Subida nueva de {member}",
        "modlog.prompt": "Indicación",
        "modlog.title": "Título",
        "modlog.cost": "Coste",
        "modlog.delete": "Borrar",
        "modlog.deleted": "🗑️ Borrada por {moderator}.",
        "audit.title": "Acciones de moderación",
        "audit.empty": "Aún no hay acciones de moderación.",
        "audit.blocklist_add": "añadió `{entry}` a la lista de bloqueo",
        "audit.blocklist_remove": "quitó `{entry}` de la lista de bloqueo",
        "audit.member_block": "bloqueó a {target}",
        "audit.member_unblock": "desbloqueó a {target}",
        "audit.image_delete": "borró la imagen `{image}` de {target}",
        "audit.reason": "motivo: {reason}",
        "usage.not_allowed": "Solo los moderadores de este servidor (Gestionar servidor) ven "
        "su uso; los administradores del bot ven el de todos.",
        "usage.bad_server": "«{value}» no es un id de servidor. Indica un id, o all.",
        "usage.title_server": "Uso de imágenes de este servidor",
        "usage.title_all": "Uso de imágenes de todos los servidores",
        "usage.title_one": "Uso de imágenes del servidor {guild}",
        "usage.line": "{images} imágenes · {cost}",
        "usage.coins": "{coins} monedas pagadas",
        "usage.in_flight": "{jobs} en curso",
        "usage.today": "Hoy",
        "usage.this_month": "Este mes",
        "usage.last_month": "El mes pasado",
        "usage.by_model": "Este mes por modelo y tamaño",
        "usage.top_members": "Miembros con más uso este mes",
        "usage.by_server": "Servidores este mes",
        "usage.budgets": "Presupuesto restante",
        "usage.budget_line": "{name}: quedan {left} de {limit} · se renueva <t:{at}:R>",
        "usage.cap.global": "Todo el bot, este mes",
        "usage.cap.server_month": "Este servidor, este mes",
        "usage.cap.server_day": "Este servidor, hoy (imágenes)",
        "usage.no_budgets": "No hay ningún presupuesto fijado.",
        "usage.none": "Nada todavía.",
        "usage.footer": "Estimado con los precios de lista de Google de {prices}; no es una "
        "factura.",
        "usage.chart_title": "Últimos 30 días",
        "cmd.usage.name": "uso",
        "cmd.usage.description": "Imágenes y su coste estimado, con un gráfico (moderadores)",
        "cmd.usage.opt.server.name": "servidor",
        "cmd.usage.opt.server.description": "Administradores del bot: un id de servidor, o all",
        "cmd.settings.audit.name": "auditoria",
        "cmd.settings.audit.description": "Acciones de moderación: quién hizo qué, cuándo y por "
        "qué",
        "cmd.settings.blocklist.name": "bloqueos",
        "cmd.settings.blocklist.description": "Palabras y patrones que no pueden usarse",
        "cmd.settings.blocklist.add.name": "anadir",
        "cmd.settings.blocklist.add.description": "Bloquea una palabra, frase o patrón",
        "cmd.settings.blocklist.add.opt.entry.name": "entrada",
        "cmd.settings.blocklist.add.opt.entry.description": "Una palabra o frase, o un patrón RE2",
        "cmd.settings.blocklist.add.opt.pattern.name": "patron",
        "cmd.settings.blocklist.add.opt.pattern.description": "La entrada es una expresión "
        "regular (RE2)",
        "cmd.settings.blocklist.remove.name": "quitar",
        "cmd.settings.blocklist.remove.description": "Desbloquea una palabra, frase o patrón",
        "cmd.settings.blocklist.remove.opt.entry.name": "entrada",
        "cmd.settings.blocklist.remove.opt.entry.description": "La entrada tal como aparece",
        "cmd.settings.blocklist.list.name": "ver",
        "cmd.settings.blocklist.list.description": "Muestra la lista de bloqueo",
        "cmd.settings.block.name": "bloquear",
        "cmd.settings.block.description": "Impide a un miembro crear y subir imágenes aquí",
        "cmd.settings.block.opt.member.name": "miembro",
        "cmd.settings.block.opt.member.description": "Quién",
        "cmd.settings.block.opt.reason.name": "motivo",
        "cmd.settings.block.opt.reason.description": "Por qué (el miembro lo ve)",
        "cmd.settings.block.opt.duration.name": "duracion",
        "cmd.settings.block.opt.duration.description": "Cuánto tiempo, p. ej. 12h, 7d (vacío: "
        "hasta desbloquear)",
        "cmd.settings.unblock.name": "desbloquear",
        "cmd.settings.unblock.description": "Deja que un miembro bloqueado vuelva a crear",
        "cmd.settings.unblock.opt.member.name": "miembro",
        "cmd.settings.unblock.opt.member.description": "Quién",
        "cmd.settings.unblock.opt.reason.name": "motivo",
        "cmd.settings.unblock.opt.reason.description": "Por qué (para la auditoría)",
        "cmd.settings.blocked.name": "bloqueados",
        "cmd.settings.blocked.description": "Miembros bloqueados aquí, y por qué",
        "choice.daily_image_cap": "Imágenes por día (servidor)",
        "choice.monthly_budget_usd": "Presupuesto mensual en USD (servidor)",
        "choice.mod_log_channel_id": "Canal del registro de moderación",
        "choice.nsfw_only": "Imágenes solo en canales con restricción de edad",
        "help.docs.owner": "Controles del propietario",
    },
}
