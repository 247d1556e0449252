"""What every HTTP handler reaches: the bot's services (shared, never copied) and the web
server's own state."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import Settings
from bot.services.callers import CallerService
from bot.services.cancels import CancelService
from bot.services.characters import CharacterService
from bot.services.conversations import ConversationService
from bot.services.directory import MemberDirectory
from bot.services.gallery import GalleryService
from bot.services.generation import GenerationService
from bot.services.members import MemberService
from bot.services.orders import OrderService
from bot.services.privacy import PrivacyService
from bot.services.ratelimits import SlidingWindow
from bot.services.tokens import TokenService
from bot.services.uploads import UploadService
from bot.services.wallets import WalletService
from bot.services.websessions import WebSessionService
from web.metrics import Observed

# Failed token checks one address may make a minute before it gets 429.
AUTH_FAILURES_PER_MINUTE = 30


@dataclass
class WebContext:
    """Services from the composition root, plus the web server's own state."""

    settings: Settings
    callers: CallerService
    tokens: TokenService
    members: MemberService
    wallets: WalletService
    gallery: GalleryService
    uploads: UploadService
    generation: GenerationService
    orders: OrderService
    cancels: CancelService
    directory: MemberDirectory
    web_sessions: WebSessionService
    # The key that signs session cookies (WEB_SESSION_SECRET, or the generated one).
    secret: bytes
    # /metrics and /readyz (None: not served, e.g. in tests of the gallery alone).
    observed: Observed | None = None
    # /privacy export's signed links (None: not served).
    privacy: PrivacyService | None = None
    # The character and style library (/api/v1/characters, the gallery's characters page).
    characters: CharacterService | None = None
    # Conversations (issue 22; None: their routes answer 404).
    conversations: ConversationService | None = None
    # The address the server is bound to, set when it starts (tests bind port 0).
    bound_url: str = ""
    api_limit: SlidingWindow = field(init=False)
    auth_failures: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self.api_limit = SlidingWindow(self.settings.api_rate_limit, 60.0)
        self.auth_failures = SlidingWindow(AUTH_FAILURES_PER_MINUTE, 60.0)

    @property
    def base_url(self) -> str:
        """Where members reach the server: WEB_BASE_URL, else the bound address."""
        return self.settings.web_base_url or self.bound_url

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"


CONTEXT = web.AppKey("context", WebContext)
# The versioned address of the gallery's stylesheet.
STYLESHEET = web.AppKey("stylesheet", str)
# The versioned address of the script that follows a job on its page (web/making.py).
JOB_SCRIPT = web.AppKey("job_script", str)


def context_of(request: web.Request) -> WebContext:
    return request.app[CONTEXT]
