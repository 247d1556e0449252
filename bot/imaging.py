"""Pillow helpers: validate, normalize, thumbnail, shrink and tile images.

Everything here is pure and synchronous: callers run it in `asyncio.to_thread`, so no function
touches shared mutable state of its own (no caches, no module-level images or fonts) and none of
them changes Pillow's global settings (`Image.MAX_IMAGE_PIXELS`, `LOAD_TRUNCATED_IMAGES`).

`inspect_image` is the gatekeeper for every user-supplied image; the other helpers assume their
input was produced by the bot or already passed it, but still refuse decompression bombs.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from PIL import ExifTags, Image, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS: Final[dict[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
DEFAULT_MAX_PIXELS: Final = 40_000_000

_EXTENSIONS: Final = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

# Errors Pillow raises from malformed data. `zlib.error` comes from broken PNG streams on some
# paths; the rest are the ones Pillow documents or that its parsers let escape.
_PILLOW_ERRORS: Final = (OSError, SyntaxError, ValueError, struct.error, EOFError, zlib.error)

# Lossy qualities tried at each scale by `fit_to_size`, best first. Below ~50 artefacts get worse
# than simply downscaling, so smaller steps go to resolution instead.
_FIT_QUALITIES: Final = (90, 80, 70, 60, 50)
_FIT_SCALE_STEP: Final = 0.75

# Contact sheet palette, close to Discord's dark theme so sheets blend into the client.
_SHEET_BACKGROUND: Final = (30, 31, 34)
_CELL_BACKGROUND: Final = (43, 45, 49)
_BROKEN_CELL: Final = (70, 40, 44)
_BROKEN_MARK: Final = (150, 90, 96)
_BADGE_FILL: Final = (0, 0, 0, 190)
_BADGE_OUTLINE: Final = (255, 255, 255, 90)
_BADGE_TEXT: Final = (255, 255, 255, 255)

_MESSAGES: Final = {
    "empty": "The image is empty.",
    "too_large": "The image is too large.",
    "not_image": "The data is not a recognizable image.",
    "unsupported_format": "The image format is not supported.",
    "animated": "Animated images are not supported.",
    "corrupt": "The image data is truncated or corrupt.",
    "too_many_pixels": "The image has too many pixels.",
}


class ImageProblem(Exception):
    """A user-supplied image was rejected.

    `code` is one of "empty", "too_large", "not_image", "unsupported_format", "animated",
    "corrupt", "too_many_pixels"; the bot maps it to a user-facing message. `detail` carries the
    numbers for that message (size, limit, width, height, pixels, format, frames, as relevant).
    `str(problem)` is a short English sentence meant for logs.
    """

    def __init__(self, code: str, message: str | None = None, **detail: int | str) -> None:
        self.code: str = code
        self.detail: dict[str, int | str] = dict(detail)
        super().__init__(message or _MESSAGES.get(code, f"Image rejected ({code})."))

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in the image pool's processes: it must cross back whole (code and detail).
        return (ImageProblem, (self.code, str(self)), {"detail": self.detail})


@dataclass(frozen=True)
class ImageInfo:
    """What `inspect_image` learned about an accepted image."""

    width: int
    height: int
    format: str
    mime_type: str
    size: int

    @property
    def aspect_ratio(self) -> str:
        """Reduced ratio such as "16:9"; a decimal like "1.78:1" when the terms would exceed 50."""
        if self.width <= 0 or self.height <= 0:
            return f"{self.width}:{self.height}"
        divisor = math.gcd(self.width, self.height)
        across, down = self.width // divisor, self.height // divisor
        if across > 50 or down > 50:
            # "683:384" means nothing to a reader; a decimal against 1 does.
            return f"{self.width / self.height:.2f}:1"
        return f"{across}:{down}"

    @property
    def extension(self) -> str:
        """File extension without the dot: "png", "jpg" or "webp"."""
        return _EXTENSIONS.get(self.format, self.format.lower())


def sniff_mime(data: bytes) -> str | None:
    """Return the MIME type of `data` if its magic bytes are PNG, JPEG or WebP, else None.

    Only looks at the first bytes, so it says nothing about whether the image is valid.
    """
    fmt = _sniff_format(data)
    return ALLOWED_FORMATS[fmt] if fmt else None


def inspect_image(
    data: bytes, *, max_bytes: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageInfo:
    """Validate a user-supplied image and describe it, or raise `ImageProblem`.

    The format is sniffed from the bytes themselves (file names and declared content types are
    never trusted). Checks run cheapest first and the pixel count is checked from the header
    before any pixel is decoded, so decompression bombs cost neither memory nor time.
    """
    size = len(data)
    if size == 0:
        raise ImageProblem("empty", "The image is empty (0 bytes).", size=0)
    if size > max_bytes:
        raise ImageProblem(
            "too_large",
            f"The image is {size} bytes, over the {max_bytes}-byte limit.",
            size=size,
            limit=max_bytes,
        )

    with _bomb_guard(), _open(data, max_pixels) as im:
        fmt = _canonical_format(im)
        frames = _frame_count(im, fmt)
        if frames > 1:
            raise ImageProblem(
                "animated",
                f"Animated {fmt} images are not supported ({frames} frames).",
                format=fmt,
                frames=frames,
            )
        _load(im, fmt)
        width, height = im.size

    return ImageInfo(
        width=width, height=height, format=fmt, mime_type=ALLOWED_FORMATS[fmt], size=size
    )


def make_thumbnail(data: bytes, size: int = 256) -> bytes:
    """Return a WebP thumbnail fitting in `size` x `size`, keeping the aspect ratio.

    EXIF orientation is applied (the thumbnail carries no metadata, so it would otherwise show
    sideways) and transparency is kept only when the image actually uses it.
    """
    if size < 1:
        raise ValueError("thumbnail size must be positive")
    with _bomb_guard(), _open(data, DEFAULT_MAX_PIXELS) as im:
        fmt = _canonical_format(im)
        try:
            # thumbnail() on the still-undecoded image lets JPEG decode at reduced scale.
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
        except _PILLOW_ERRORS as exc:
            raise _corrupt(fmt) from exc
        # Read after the one decode: a PNG's EXIF may follow its pixels, and asking for it
        # first would decode the whole image once more just to find it.
        orientation = _orientation(im)
        thumb = _to_rgb_or_rgba(_apply_orientation(im, orientation))
        # Encode inside the block: `thumb` may still be `im`, whose file closes on exit.
        return _encode(thumb, "WEBP", quality=80, method=4)


def normalize_upload(data: bytes, info: ImageInfo) -> tuple[bytes, ImageInfo]:
    """Re-encode an inspected upload in its own format without metadata.

    Strips EXIF (including GPS), XMP, comments and PNG text chunks, applying the EXIF orientation
    first so the picture still looks the same. The ICC profile is kept: it is colour data, not
    personal data. Returns the new bytes and their `ImageInfo`.
    """
    fmt = info.format
    if fmt not in ALLOWED_FORMATS:
        raise ImageProblem("unsupported_format", f"{fmt} images are not supported.", format=fmt)
    with _bomb_guard(), _open(data, DEFAULT_MAX_PIXELS) as opened:
        _load(opened, _canonical_format(opened))
        orientation = _orientation(opened)
        icc = opened.info.get("icc_profile")
        transparency = opened.info.get("transparency")
        # quality="keep" re-uses the original JPEG tables, so an unrotated JPEG neither grows nor
        # loses quality; Pillow only allows it on the JpegImageFile itself (not MPO, not copies).
        keep_jpeg_tables = fmt == "JPEG" and opened.format == "JPEG" and orientation == 1
        im = _apply_orientation(opened, orientation)
        # Pillow falls back to `im.info` for some metadata (the JPEG comment, for one), so an
        # empty info dict is the only reliable way to be sure nothing is carried over.
        im.info = {}
        params: dict[str, Any] = {}
        if isinstance(icc, bytes) and icc:
            params["icc_profile"] = icc
        if fmt == "PNG":
            if transparency is not None:
                params["transparency"] = transparency
        elif fmt == "JPEG":
            if keep_jpeg_tables:
                params["quality"] = "keep"
            else:
                params["quality"] = 95
                if im.mode not in ("L", "RGB", "CMYK"):
                    im = im.convert("RGB")
        else:
            if im.mode not in ("RGB", "RGBA"):
                im = _to_rgb_or_rgba(im)
            if _webp_is_lossless(data):
                params["lossless"] = True
            else:
                params["quality"] = 90
        out = _encode(im, fmt, **params)
        width, height = im.size
    return out, ImageInfo(
        width=width, height=height, format=fmt, mime_type=ALLOWED_FORMATS[fmt], size=len(out)
    )


def fit_to_size(data: bytes, max_bytes: int, *, min_side: int = 64) -> tuple[bytes, str]:
    """Return the image as (bytes, mime type) no bigger than `max_bytes`.

    Data that already fits is returned unchanged. Otherwise a PNG is first re-saved optimized
    (lossless), then the image is re-encoded lossy (WebP when it has real transparency, JPEG
    otherwise) at decreasing quality, then downscaled by steps of about 0.75 until it fits.
    The shorter side never goes below `min_side`; if even that is too big, raises
    `ImageProblem("too_large")`.
    """
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    if len(data) <= max_bytes:
        return data, sniff_mime(data) or "application/octet-stream"

    with _bomb_guard(), _open(data, DEFAULT_MAX_PIXELS) as opened:
        fmt = _canonical_format(opened)
        _load(opened, fmt)
        # The output has no EXIF, so orientation must be baked into the pixels.
        base = _apply_orientation(opened, _orientation(opened))
        if fmt == "PNG":
            base.info = {}
            optimized = _encode(base, "PNG", optimize=True)
            if len(optimized) <= max_bytes:
                return optimized, ALLOWED_FORMATS["PNG"]
        base = _to_rgb_or_rgba(base)

    return _fit_lossy(base, max_bytes, min_side, len(data))


def probe_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Identify and verify a PNG, JPEG or WebP without decoding its pixels, or raise
    `ImageProblem`: a cheap check for images from a trusted source (the model's answers,
    inputs the bot already inspected), where `inspect_image` would decode everything."""
    if not data:
        raise ImageProblem("empty", "The image is empty (0 bytes).", size=0)
    with _bomb_guard(), _open(data, max_pixels) as im:
        fmt = _canonical_format(im)
        width, height = im.size
        try:
            im.verify()
        except _PILLOW_ERRORS as exc:
            raise _corrupt(fmt) from exc
    return ImageInfo(
        width=width, height=height, format=fmt, mime_type=ALLOWED_FORMATS[fmt], size=len(data)
    )


def shrink_input(
    data: bytes, *, max_bytes: int, max_pixels: int, max_side: int
) -> tuple[bytes, str]:
    """Check a member's image for a model request and bring it down to what the model uses,
    as (bytes, mime type): one still PNG, JPEG or WebP within `max_bytes` and `max_pixels`
    (checked from the header before any pixel is decoded), no longer than `max_side`. An
    image already that small comes back as it is (after a full decode, so damage shows now);
    a bigger one is decoded once (a JPEG at reduced scale straight away), oriented, scaled to
    `max_side` and re-encoded (JPEG, or PNG when it really uses transparency), so the
    megabytes it came as can be dropped at once. Raises `ImageProblem`."""
    size = len(data)
    if size == 0:
        raise ImageProblem("empty", "The image is empty (0 bytes).", size=0)
    if size > max_bytes:
        raise ImageProblem("too_large", size=size, limit=max_bytes)
    with _bomb_guard(), _open(data, max_pixels) as im:
        fmt = _canonical_format(im)
        frames = _frame_count(im, fmt)
        if frames > 1:
            raise ImageProblem("animated", format=fmt, frames=frames)
        if max(im.size) <= max_side:
            _load(im, fmt)
            return data, ALLOWED_FORMATS[fmt]
        base = _upright(im, fmt, max_side)
    if max(base.size) > max_side:
        base = base.copy() if base is im else base
        base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if base.mode == "RGBA":
        return _encode(base, "PNG", compress_level=6), ALLOWED_FORMATS["PNG"]
    return _encode(base, "JPEG", quality=90), ALLOWED_FORMATS["JPEG"]


def _upright(im: ImageFile.ImageFile, fmt: str, max_side: int) -> Image.Image:
    """The image decoded, turned upright (EXIF orientation) and in RGB or RGBA; a JPEG is
    decoded at a reduced scale straight away when it is larger than `max_side` (a 6000 px
    photo needs no full decode). May return `im` itself."""
    orientation = _orientation(im)
    if fmt == "JPEG":
        im.draft("RGB", (max_side, max_side))
    _load(im, fmt)
    return _to_rgb_or_rgba(_apply_orientation(im, orientation))


def fit_for_model(data: bytes, *, max_bytes: int, max_side: int) -> tuple[bytes, str]:
    """An image as (bytes, mime type) for an image model's request: unchanged when it is
    within `max_side` pixels and `max_bytes`, otherwise scaled to `max_side`, then re-encoded
    (PNG when it has real transparency and fits, else WebP; JPEG when opaque) and scaled
    down further until it fits. Raises `ImageProblem` for anything unreadable or too big."""
    if max_bytes < 1 or max_side < 1:
        raise ValueError("max_bytes and max_side must be positive")
    with _bomb_guard(), _open(data, DEFAULT_MAX_PIXELS) as opened:
        fmt = _canonical_format(opened)
        if max(opened.size) <= max_side and len(data) <= max_bytes:
            return data, ALLOWED_FORMATS[fmt]
        base = _upright(opened, fmt, max_side)
    if max(base.size) > max_side:
        base = base.copy()
        base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if base.mode == "RGBA":
        encoded = _encode(base, "PNG", compress_level=6)
        if len(encoded) <= max_bytes:
            return encoded, ALLOWED_FORMATS["PNG"]
    return _fit_lossy(base, max_bytes, 64, len(data))


def _fit_lossy(base: Image.Image, max_bytes: int, min_side: int, start: int) -> tuple[bytes, str]:
    """Re-encode `base` lossy (WebP with transparency, JPEG without) at falling quality, then
    smaller, until it fits in `max_bytes`; `ImageProblem("too_large")` when nothing does."""
    target = "WEBP" if base.mode == "RGBA" else "JPEG"
    width, height = base.size
    short = min(width, height)
    scale = 1.0
    smallest = start
    while True:
        frame = base
        if scale < 1.0:
            new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            frame = base.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        for quality in _FIT_QUALITIES:
            out = _encode(frame, target, quality=quality)
            smallest = min(smallest, len(out))
            if len(out) <= max_bytes:
                return out, ALLOWED_FORMATS[target]
        if min(frame.size) <= min_side:
            break
        # Bytes scale roughly with area, so jump straight near the size that should fit rather
        # than re-encoding many hopeless intermediate sizes; never shrink by less than one step.
        estimate = math.sqrt(max_bytes / smallest) * 0.95
        scale *= min(_FIT_SCALE_STEP, estimate)
        scale = max(scale, min_side / short)

    raise ImageProblem(
        "too_large",
        f"Could not fit the image in {max_bytes} bytes (best was {smallest} bytes).",
        size=smallest,
        limit=max_bytes,
    )


def contact_sheet(
    thumbnails: Sequence[bytes],
    *,
    columns: int = 3,
    cell: int = 256,
    start_number: int = 1,
    gap: int = 8,
    format: str = "JPEG",
) -> bytes:
    """Tile thumbnails into a numbered grid and return its bytes: JPEG by default (small and
    fast for photos: bench_bot measures it against WebP and PNG), or `format` ("WEBP",
    "PNG").

    Each thumbnail is centred in a `cell` x `cell` square on a dark background with its number
    (`start_number`, `start_number + 1`, ...) in a badge at the top-left corner. The grid has
    `min(columns, len(thumbnails))` columns. A thumbnail that cannot be decoded becomes a
    placeholder cell that still carries its number, so one bad file never breaks a gallery.
    """
    if not thumbnails:
        raise ValueError("contact_sheet needs at least one thumbnail")
    if columns < 1 or cell < 16 or gap < 0:
        raise ValueError("columns must be >= 1, cell >= 16 and gap >= 0")

    count = len(thumbnails)
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    sheet = Image.new(
        "RGB", (cols * cell + (cols + 1) * gap, rows * cell + (rows + 1) * gap), _SHEET_BACKGROUND
    )
    # "RGBA" drawing on an RGB image blends, which gives the badge its translucent backing.
    draw = ImageDraw.Draw(sheet, "RGBA")
    font = ImageFont.load_default(size=max(12, cell // 7))

    for index, thumb in enumerate(thumbnails):
        row, col = divmod(index, cols)
        left = gap + col * (cell + gap)
        top = gap + row * (cell + gap)
        tile = _decode_tile(thumb, cell)
        if tile is None:
            _draw_placeholder(draw, left, top, cell)
        else:
            draw.rectangle((left, top, left + cell - 1, top + cell - 1), fill=_CELL_BACKGROUND)
            offset = (left + (cell - tile.width) // 2, top + (cell - tile.height) // 2)
            sheet.paste(tile, offset, tile)
        _draw_badge(draw, font, str(start_number + index), left, top, cell)

    if format == "PNG":
        return _encode(sheet, "PNG", optimize=False)
    if format == "WEBP":
        return _encode(sheet, "WEBP", quality=80, method=2)
    return _encode(sheet, "JPEG", quality=85)


# --- internals -------------------------------------------------------------------------------


@contextmanager
def _bomb_guard() -> Iterator[None]:
    """Turn Pillow's decompression-bomb warning into an error for the enclosed code.

    This is a second line of defence only: the explicit pixel check in `_open` is what protects
    us, independent of `Image.MAX_IMAGE_PIXELS`. That matters because `catch_warnings` mutates
    process-global state and is not thread-safe before Python 3.14; if two threads interleave,
    the worst outcome is that this filter is briefly missing or left installed, and both are
    harmless.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _too_many_pixels(width: int, height: int, max_pixels: int) -> ImageProblem:
    pixels = width * height
    return ImageProblem(
        "too_many_pixels",
        f"The image is {width}x{height} ({pixels} pixels), over the {max_pixels}-pixel limit.",
        width=width,
        height=height,
        pixels=pixels,
        limit=max_pixels,
    )


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Identify `data` and check format and pixel count without decoding any pixels."""
    sniffed = _sniff_format(data)
    header = _header_size(data, sniffed)
    # Checked before Image.open: Pillow's WebP plugin allocates the whole canvas while opening,
    # and Pillow's own guard depends on a global that anyone may have changed or disabled.
    if header is not None and header[0] * header[1] > max_pixels:
        raise _too_many_pixels(header[0], header[1], max_pixels)
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (its global limit) fired before we could read the size ourselves.
        raise ImageProblem(
            "too_many_pixels",
            "Pillow refused the image as a possible decompression bomb.",
            limit=max_pixels,
        ) from exc
    except (UnidentifiedImageError, *_PILLOW_ERRORS) as exc:
        # Right magic bytes but no readable header: a broken image, not some other kind of file.
        if sniffed is not None:
            raise ImageProblem(
                "corrupt", f"The {sniffed} header is unreadable.", format=sniffed
            ) from exc
        raise ImageProblem("not_image", size=len(data)) from exc

    fmt = _canonical_format(im)
    if fmt not in ALLOWED_FORMATS:
        im.close()
        raise ImageProblem(
            "unsupported_format",
            f"{fmt} images are not supported (only PNG, JPEG and WebP).",
            format=fmt,
        )
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise _too_many_pixels(width, height, max_pixels)
    return im


def _canonical_format(im: Image.Image) -> str:
    """Pillow's format name, with MPO reported as the JPEG it is.

    Phones commonly save MPO (a JPEG with extra embedded pictures, e.g. depth maps); every
    viewer shows its first picture, so it is accepted and treated as an ordinary JPEG.
    """
    fmt = im.format or "UNKNOWN"
    return "JPEG" if fmt == "MPO" else fmt


def _frame_count(im: Image.Image, fmt: str) -> int:
    """Number of frames as far as animation goes (MPO's extra pictures are not frames)."""
    if fmt == "JPEG":
        return 1
    frames = getattr(im, "n_frames", 1)
    count = frames if isinstance(frames, int) else 1
    if getattr(im, "is_animated", False):
        count = max(count, 2)
    return count


def _load(im: ImageFile.ImageFile, fmt: str) -> None:
    """Fully decode the pixels so truncated or corrupt data shows up now, not later."""
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Only reachable if some plugin checks again while decoding, against Pillow's global
        # limit; the image is within ours, so report its size without a limit.
        width, height = im.size
        raise ImageProblem(
            "too_many_pixels",
            f"Pillow refused to decode a {width}x{height} image as a possible bomb.",
            width=width,
            height=height,
            pixels=width * height,
        ) from exc
    except _PILLOW_ERRORS as exc:
        raise _corrupt(fmt) from exc


def _corrupt(fmt: str) -> ImageProblem:
    return ImageProblem("corrupt", f"The {fmt} data is truncated or corrupt.", format=fmt)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation (1-8), 1 when absent or unreadable."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _PILLOW_ERRORS:
        # Malformed EXIF is common in the wild and must not make an otherwise fine image fail.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    """Bake the EXIF orientation into the pixels; returns `im` itself when there is none."""
    if orientation == 1:
        return im
    try:
        return ImageOps.exif_transpose(im)
    except _PILLOW_ERRORS:
        return im


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """RGBA when the image really uses transparency, RGB otherwise.

    An alpha channel that is fully opaque is dropped: it would only cost bytes, and it forces
    WebP instead of JPEG in `fit_to_size`.
    """
    if im.has_transparency_data:
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        lowest_alpha = rgba.getchannel("A").getextrema()[0]
        if isinstance(lowest_alpha, (int, float)) and lowest_alpha < 255:
            return rgba
        return rgba.convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _sniff_format(data: bytes) -> str | None:
    """Allowed format named by the magic bytes, mirroring what Pillow itself accepts."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] in (b"VP8 ", b"VP8L", b"VP8X"):
        return "WEBP"
    return None


def _header_size(data: bytes, fmt: str | None) -> tuple[int, int] | None:
    """Image dimensions read straight from the header bytes, or None if not found."""
    if fmt == "PNG":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        return None
    if fmt == "WEBP":
        return _webp_size(data)
    if fmt == "JPEG":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from the first WebP chunk (VP8X, VP8L or VP8 bitstream header)."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    return None


# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# How many stray bytes between segments the header scan skips before giving up.
_JPEG_MAX_JUNK: Final = 65536


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Dimensions from the first JPEG start-of-frame segment, scanning segment headers only."""
    pos = 2
    end = len(data)
    junk = 0
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            # Stray bytes between segments: decoders (and Pillow) skip them to the next
            # marker, so the frame header after them is what will be decoded.
            junk += 1
            if junk > _JPEG_MAX_JUNK:
                return None
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length field
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _JPEG_SOF_MARKERS:
            if pos + 9 > end:
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if length < 2:
            return None
        pos += 2 + length
    return None


def _webp_is_lossless(data: bytes) -> bool:
    """Whether the first image bitstream chunk is VP8L, so re-encoding can stay lossless."""
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + length + (length & 1)  # chunks are padded to an even length
    return False


def _decode_tile(data: bytes, cell: int) -> Image.Image | None:
    """A thumbnail scaled to fit a cell as RGBA, or None when it cannot be decoded."""
    try:
        with _bomb_guard(), _open(data, DEFAULT_MAX_PIXELS) as im:
            orientation = _orientation(im)
            im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            return _apply_orientation(im, orientation).convert("RGBA")
    except (ImageProblem, *_PILLOW_ERRORS):
        return None


def _draw_placeholder(draw: ImageDraw.ImageDraw, left: int, top: int, cell: int) -> None:
    """A muted cell with a cross, standing in for a thumbnail that would not decode."""
    right, bottom = left + cell - 1, top + cell - 1
    draw.rectangle((left, top, right, bottom), fill=_BROKEN_CELL)
    inset = cell // 3
    width = max(2, cell // 40)
    draw.line((left + inset, top + inset, right - inset, bottom - inset), _BROKEN_MARK, width)
    draw.line((left + inset, bottom - inset, right - inset, top + inset), _BROKEN_MARK, width)


def _draw_badge(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    text: str,
    left: int,
    top: int,
    cell: int,
) -> None:
    """The item number in a rounded translucent box at the top-left of a cell."""
    margin = max(3, cell // 40)
    pad_x = max(4, cell // 28)
    pad_y = max(2, cell // 50)
    text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
    box_width = (text_right - text_left) + 2 * pad_x
    box_height = (text_bottom - text_top) + 2 * pad_y
    # A badge at least as wide as it is tall reads as a badge even for single digits.
    box_width = max(box_width, box_height)
    x0, y0 = left + margin, top + margin
    x1, y1 = x0 + box_width, y0 + box_height
    draw.rounded_rectangle(
        (x0, y0, x1, y1),
        radius=box_height // 3,
        fill=_BADGE_FILL,
        outline=_BADGE_OUTLINE,
        width=1,
    )
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=font, fill=_BADGE_TEXT, anchor="mm")
