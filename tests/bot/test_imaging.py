"""Tests for bot.imaging. Every fixture image is generated here with Pillow (or zlib/struct)."""

from __future__ import annotations

import asyncio
import io
import os
import resource
import struct
import time
import zlib
from typing import Any

import pytest
from PIL import ExifTags, Image, JpegImagePlugin, PngImagePlugin

from bot.imaging import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    ImageProblem,
    contact_sheet,
    fit_for_model,
    fit_to_size,
    inspect_image,
    make_thumbnail,
    normalize_upload,
    probe_image,
    shrink_input,
    sniff_mime,
)

MB = 1024 * 1024
RED = (220, 30, 30)
BLUE = (30, 30, 220)


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(size: tuple[int, int], color: tuple[int, ...] = BLUE, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    channels = len(mode)
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * channels))


def problem_code(data: bytes, **kwargs: Any) -> ImageProblem:
    kwargs.setdefault("max_bytes", 50 * MB)
    with pytest.raises(ImageProblem) as excinfo:
        inspect_image(data, **kwargs)
    return excinfo.value


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    """A real, valid 1-bit 20000x20000 PNG (400 M pixels) that is only ~50 KB on disk."""
    width = height = 20_000
    row = b"\x00" + b"\x00" * (width // 8)  # filter byte + packed 1-bit pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


# --- inspect_image: accepted images ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "extension"),
    [("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp")],
)
def test_accepts_allowed_formats(fmt: str, mime: str, extension: str) -> None:
    data = encode(solid((1920, 1080)), fmt)
    info = inspect_image(data, max_bytes=10 * MB)
    assert info == ImageInfo(width=1920, height=1080, format=fmt, mime_type=mime, size=len(data))
    assert info.aspect_ratio == "16:9"
    assert info.extension == extension
    assert ALLOWED_FORMATS[fmt] == mime


def test_square_and_awkward_aspect_ratios() -> None:
    assert inspect_image(encode(solid((512, 512)), "PNG"), max_bytes=MB).aspect_ratio == "1:1"
    assert ImageInfo(1366, 768, "PNG", "image/png", 1).aspect_ratio == "1.78:1"
    assert ImageInfo(1024, 768, "PNG", "image/png", 1).aspect_ratio == "4:3"
    assert ImageInfo(768, 1344, "PNG", "image/png", 1).aspect_ratio == "4:7"
    assert ImageInfo(1000, 750, "PNG", "image/png", 1).aspect_ratio == "4:3"


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "1", "I;16"])
def test_accepts_png_modes(mode: str) -> None:
    info = inspect_image(encode(Image.new(mode, (30, 20)), "PNG"), max_bytes=MB)
    assert (info.width, info.height, info.format) == (30, 20, "PNG")


def test_single_frame_apng_is_not_animated() -> None:
    data = encode(solid((40, 40)), "PNG", save_all=True, append_images=[])
    assert inspect_image(data, max_bytes=MB).format == "PNG"


def test_mpo_from_a_phone_is_treated_as_jpeg() -> None:
    data = encode(solid((64, 48), RED), "MPO", save_all=True, append_images=[solid((64, 48))])
    info = inspect_image(data, max_bytes=MB)
    assert (info.format, info.mime_type, info.width, info.height) == ("JPEG", "image/jpeg", 64, 48)


# --- inspect_image: rejections --------------------------------------------------------------


def test_empty() -> None:
    problem = problem_code(b"")
    assert problem.code == "empty"
    assert str(problem)


def test_too_large_is_checked_before_decoding() -> None:
    data = encode(solid((64, 64)), "PNG")
    problem = problem_code(data, max_bytes=len(data) - 1)
    assert problem.code == "too_large"
    assert problem.detail == {"size": len(data), "limit": len(data) - 1}
    assert str(len(data)) in str(problem)
    # Not even image data is looked at once the size is over the limit.
    assert problem_code(b"x" * 100, max_bytes=10).code == "too_large"


def test_text_is_not_an_image_whatever_its_name() -> None:
    problem = problem_code(b"hello, I am definitely a PNG file, honest\n" * 10)
    assert problem.code == "not_image"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_unsupported_formats(fmt: str) -> None:
    problem = problem_code(encode(solid((32, 32)), fmt))
    assert problem.code == "unsupported_format"
    assert problem.detail["format"] == fmt


def test_animated_gif_is_unsupported_before_animated() -> None:
    frames = [solid((32, 32), RED), solid((32, 32), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert problem_code(data).code == "unsupported_format"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_png_and_webp(fmt: str) -> None:
    frames = [solid((32, 32), RED), solid((32, 32), BLUE), solid((32, 32), RED)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    problem = problem_code(data)
    assert problem.code == "animated"
    assert problem.detail == {"format": fmt, "frames": 3}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_corrupt(fmt: str) -> None:
    data = encode(noise((200, 200)), fmt)
    problem = problem_code(data[: len(data) // 2])
    assert problem.code == "corrupt"
    assert problem.detail["format"] == fmt


def test_png_with_valid_signature_but_garbage_is_corrupt() -> None:
    assert problem_code(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50).code == "corrupt"


def test_png_with_bad_crc_is_corrupt() -> None:
    data = bytearray(encode(noise((50, 50)), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF  # flip bits inside the compressed pixel data
    assert problem_code(bytes(data)).code == "corrupt"


def test_max_pixels_lower_than_the_image() -> None:
    problem = problem_code(encode(solid((100, 60)), "PNG"), max_pixels=5_000)
    assert problem.code == "too_many_pixels"
    assert problem.detail == {"width": 100, "height": 60, "pixels": 6_000, "limit": 5_000}
    # Exactly at the limit is fine.
    assert inspect_image(encode(solid((100, 50)), "PNG"), max_bytes=MB, max_pixels=5_000)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def test_decompression_bomb_png_is_rejected_cheaply(bomb_png: bytes) -> None:
    assert len(bomb_png) < 200_000
    rss_before = _max_rss_mb()
    started = time.perf_counter()
    problem = problem_code(bomb_png)
    elapsed = time.perf_counter() - started
    assert problem.code == "too_many_pixels"
    assert problem.detail["width"] == 20_000
    assert problem.detail["height"] == 20_000
    assert problem.detail["limit"] == DEFAULT_MAX_PIXELS
    assert elapsed < 0.5
    # Decoding would need 400 MB (Pillow keeps 1-bit images at a byte per pixel).
    assert _max_rss_mb() - rss_before < 50


def test_bomb_rejected_even_with_pillow_guard_disabled(
    bomb_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    rss_before = _max_rss_mb()
    assert problem_code(bomb_png).code == "too_many_pixels"
    assert _max_rss_mb() - rss_before < 50


def test_webp_bomb_header_is_rejected_before_pillow_allocates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pillow's WebP plugin allocates the canvas while *opening*; claim a 16000x16000 canvas.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (16_000 - 1).to_bytes(3, "little") + (16_000 - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    problem = problem_code(data)
    assert problem.code == "too_many_pixels"
    assert (problem.detail["width"], problem.detail["height"]) == (16_000, 16_000)


def test_jpeg_header_claiming_huge_dimensions() -> None:
    data = bytearray(encode(solid((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 50_000)  # height, width
    problem = problem_code(bytes(data))
    assert problem.code == "too_many_pixels"
    assert (problem.detail["width"], problem.detail["height"]) == (50_000, 60_000)


def test_jpeg_frame_header_after_a_stray_byte_is_still_read() -> None:
    """Decoders skip stray bytes between segments, so the frame after them is what counts:
    the size comes from our header scan, not from Pillow's guard (which knows no size)."""
    data = bytearray(encode(solid((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    data[app0_end:app0_end] = b"\x00\x17"  # junk between APP0 and the next segment
    problem = problem_code(bytes(data))
    assert problem.code == "too_many_pixels"
    assert (problem.detail["width"], problem.detail["height"]) == (60_000, 60_000)


def test_probe_reads_size_and_type_without_decoding() -> None:
    info = probe_image(encode(solid((30, 20)), "JPEG"))
    assert (info.width, info.height, info.mime_type) == (30, 20, "image/jpeg")
    with pytest.raises(ImageProblem) as caught:
        probe_image(encode(solid((30, 20)), "GIF"))
    assert caught.value.code == "unsupported_format"
    with pytest.raises(ImageProblem):
        probe_image(b"")


def test_fit_for_model_passes_small_images_untouched_and_shrinks_big_ones() -> None:
    small = encode(solid((64, 48)), "PNG")
    assert fit_for_model(small, max_bytes=10 * MB, max_side=2048) == (small, "image/png")
    wide = encode(Image.new("RGBA", (3000, 1000), (10, 200, 10, 128)), "PNG")
    data, mime = fit_for_model(wide, max_bytes=10 * MB, max_side=2048)
    with Image.open(io.BytesIO(data)) as out:  # transparency kept, as PNG when it fits
        assert (mime, out.size, out.mode) == ("image/png", (2048, 683), "RGBA")
    photo = encode(Image.effect_noise((2500, 2500), 60).convert("RGB"), "JPEG", quality=95)
    data, mime = fit_for_model(photo, max_bytes=300_000, max_side=2048)
    assert mime == "image/jpeg" and len(data) <= 300_000
    with Image.open(io.BytesIO(data)) as out:
        assert max(out.size) <= 2048


def test_large_webp_within_limit_passes_header_check() -> None:
    data = encode(solid((3000, 2000)), "WEBP", lossless=True)
    assert inspect_image(data, max_bytes=MB).aspect_ratio == "3:2"
    data = encode(solid((3000, 2000)), "WEBP", quality=50)
    assert problem_code(data, max_pixels=5_000_000).detail["width"] == 3000


# --- sniff_mime ----------------------------------------------------------------------------


def test_sniff_mime() -> None:
    assert sniff_mime(encode(solid((8, 8)), "PNG")) == "image/png"
    assert sniff_mime(encode(solid((8, 8)), "JPEG")) == "image/jpeg"
    assert sniff_mime(encode(solid((8, 8)), "WEBP")) == "image/webp"
    assert sniff_mime(encode(solid((8, 8)), "GIF")) is None
    assert sniff_mime(b"") is None
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


# --- make_thumbnail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (256, 144)), ((600, 1200), (128, 256)), ((100, 80), (100, 80))],
)
def test_thumbnail_is_webp_and_keeps_ratio(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    thumb = make_thumbnail(encode(noise(size), "PNG"))
    assert sniff_mime(thumb) == "image/webp"
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.size == expected
        assert im.mode == "RGB"


def test_thumbnail_keeps_real_transparency_only() -> None:
    clear = solid((300, 300), (255, 0, 0, 0), "RGBA")
    with Image.open(io.BytesIO(make_thumbnail(encode(clear, "PNG"), 64))) as im:
        assert im.mode == "RGBA"
        assert im.size == (64, 64)
    opaque = solid((300, 300), (255, 0, 0, 255), "RGBA")
    with Image.open(io.BytesIO(make_thumbnail(encode(opaque, "PNG"), 64))) as im:
        assert im.mode == "RGB"


def oriented_jpeg(orientation: int = 6, *, gps: bool = True) -> bytes:
    """A 200x100 JPEG, red on the left half and blue on the right, with EXIF (and GPS)."""
    im = solid((200, 100), BLUE)
    im.paste(RED, (0, 0, 100, 100))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    if gps:
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 3.0)
    return encode(im, "JPEG", exif=exif, quality=95)


def is_close(pixel: Any, color: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel[:3], color, strict=True))


def test_thumbnail_applies_exif_orientation() -> None:
    # Orientation 6: the stored picture must be turned 90° clockwise to be shown upright,
    # so the red left half ends up on top.
    with Image.open(io.BytesIO(make_thumbnail(oriented_jpeg(6), 64))) as im:
        assert im.size == (32, 64)
        assert is_close(im.getpixel((16, 8)), RED)
        assert is_close(im.getpixel((16, 56)), BLUE)


def test_thumbnail_of_garbage_raises_image_problem() -> None:
    with pytest.raises(ImageProblem):
        make_thumbnail(b"not an image")
    data = encode(noise((300, 300)), "PNG")
    with pytest.raises(ImageProblem) as excinfo:
        make_thumbnail(data[: len(data) // 2])
    assert excinfo.value.code == "corrupt"


# --- normalize_upload ----------------------------------------------------------------------


def test_normalize_jpeg_applies_orientation_and_strips_exif_and_gps() -> None:
    data = oriented_jpeg(6)
    info = inspect_image(data, max_bytes=MB)
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture really has GPS
    out, new_info = normalize_upload(data, info)
    assert (new_info.width, new_info.height, new_info.format) == (100, 200, "JPEG")
    assert new_info.size == len(out)
    assert new_info == inspect_image(out, max_bytes=MB)
    with Image.open(io.BytesIO(out)) as im:
        assert "exif" not in im.info
        assert len(im.getexif()) == 0
        assert not im.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert is_close(im.getpixel((50, 20)), RED)
        assert is_close(im.getpixel((50, 180)), BLUE)
    assert b"PhoneCo" not in out
    assert b"Exif" not in out


def test_normalize_unrotated_jpeg_keeps_its_quality_tables() -> None:
    data = oriented_jpeg(1)
    out, new_info = normalize_upload(data, inspect_image(data, max_bytes=MB))
    assert (new_info.width, new_info.height) == (200, 100)
    assert b"Exif" not in out
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(out)) as after:
        assert isinstance(before, JpegImagePlugin.JpegImageFile)
        assert isinstance(after, JpegImagePlugin.JpegImageFile)
        assert before.quantization == after.quantization


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_normalize_png_and_webp_strip_metadata(fmt: str) -> None:
    # Half-transparent blue on the right: libwebp would drop a fully opaque alpha channel.
    im = solid((40, 20), (*BLUE, 128), "RGBA")
    im.paste((*RED, 255), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    params: dict[str, Any] = {"exif": exif}
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "secret location")
        params["pnginfo"] = text
    else:
        params["lossless"] = True
    data = encode(im, fmt, **params)
    assert b"PhoneCo" in data

    out, info = normalize_upload(data, inspect_image(data, max_bytes=MB))
    assert (info.width, info.height, info.format) == (20, 40, fmt)
    assert b"PhoneCo" not in out
    assert b"secret location" not in out
    with Image.open(io.BytesIO(out)) as clean:
        assert len(clean.getexif()) == 0
        assert clean.mode == "RGBA"
        assert clean.getpixel((10, 5)) == (*RED, 255)  # lossless WebP stays lossless
        assert clean.getpixel((10, 35)) == (*BLUE, 128)


def test_normalize_keeps_png_palette_transparency() -> None:
    im = Image.new("P", (10, 10), 1)
    im.putpalette([0, 0, 0, 255, 0, 0])
    data = encode(im, "PNG", transparency=1)
    out, _ = normalize_upload(data, inspect_image(data, max_bytes=MB))
    with Image.open(io.BytesIO(out)) as clean:
        assert clean.mode == "P"
        assert clean.info.get("transparency") == 1


# --- fit_to_size ---------------------------------------------------------------------------


def test_fit_returns_data_unchanged_when_it_fits() -> None:
    data = encode(noise((64, 64)), "PNG")
    assert fit_to_size(data, len(data)) == (data, "image/png")
    webp = encode(noise((64, 64)), "WEBP")
    out, mime = fit_to_size(webp, MB)
    assert out is webp
    assert mime == "image/webp"


def test_fit_shrinks_a_large_noisy_png() -> None:
    data = encode(noise((1024, 1024)), "PNG")
    assert len(data) > 3 * MB
    limit = 200_000
    out, mime = fit_to_size(data, limit)
    assert len(out) <= limit
    assert mime == "image/jpeg"
    assert sniff_mime(out) == mime
    with Image.open(io.BytesIO(out)) as im:
        assert im.width == im.height  # aspect ratio kept
        assert 64 <= im.width < 1024


def test_fit_tries_optimized_png_first() -> None:
    # A flat image saved without compression shrinks a lot when simply optimized.
    data = encode(solid((500, 500)), "PNG", compress_level=0)
    out, mime = fit_to_size(data, len(data) // 10)
    assert mime == "image/png"
    with Image.open(io.BytesIO(out)) as im:
        assert im.size == (500, 500)


def test_fit_keeps_transparency_with_webp() -> None:
    data = encode(noise((512, 512), "RGBA"), "PNG")
    out, mime = fit_to_size(data, 100_000)
    assert mime == "image/webp"
    assert len(out) <= 100_000
    with Image.open(io.BytesIO(out)) as im:
        assert im.mode == "RGBA"


def test_fit_gives_up_below_min_side() -> None:
    data = encode(noise((512, 512)), "PNG")
    with pytest.raises(ImageProblem) as excinfo:
        fit_to_size(data, 500, min_side=64)
    assert excinfo.value.code == "too_large"
    assert excinfo.value.detail["limit"] == 500
    assert int(excinfo.value.detail["size"]) > 500


# --- contact_sheet -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thumbs() -> list[bytes]:
    colors = [(200, 60, 60), (60, 160, 80), (70, 90, 200), (220, 180, 40), (160, 70, 180)]
    sizes = [(256, 144), (144, 256), (256, 256), (200, 120), (90, 90)]
    return [make_thumbnail(encode(solid(sizes[i % 5], colors[i % 5]), "PNG")) for i in range(9)]


@pytest.mark.parametrize(
    ("count", "columns", "expected"),
    [(1, 3, (272, 272)), (3, 3, (800, 272)), (9, 3, (800, 800)), (5, 2, (536, 800))],
)
def test_contact_sheet_dimensions(
    thumbs: list[bytes], count: int, columns: int, expected: tuple[int, int]
) -> None:
    sheet = contact_sheet(thumbs[:count], columns=columns)
    assert sniff_mime(sheet) == "image/jpeg"  # the fastest of the three (bench_bot)
    with Image.open(io.BytesIO(sheet)) as im:
        assert im.size == expected
    for fmt, mime in (("PNG", "image/png"), ("WEBP", "image/webp")):
        other = contact_sheet(thumbs[:count], columns=columns, format=fmt)
        assert sniff_mime(other) == mime
        with Image.open(io.BytesIO(other)) as im:
            assert im.size == expected


def test_contact_sheet_custom_cell_and_gap(thumbs: list[bytes]) -> None:
    with Image.open(io.BytesIO(contact_sheet(thumbs[:4], columns=4, cell=128, gap=4))) as im:
        assert im.size == (4 * 128 + 5 * 4, 128 + 2 * 4)


def test_contact_sheet_centres_thumbnails_and_draws_badges(thumbs: list[bytes]) -> None:
    with Image.open(io.BytesIO(contact_sheet(thumbs[:1], start_number=7))) as im:
        rgb = im.convert("RGB")
        # A 256x144 thumbnail is centred vertically in its 256x256 cell at (8, 8).
        assert is_close(rgb.getpixel((8 + 128, 8 + 128)), (200, 60, 60), 25)
        assert is_close(rgb.getpixel((8 + 128, 8 + 20)), (43, 45, 49), 5)
        # The badge (white digits on a dark box) sits in the top-left corner.
        badge = rgb.crop((8, 8, 8 + 60, 8 + 60)).convert("L")
        lo, hi = badge.getextrema()
        assert isinstance(lo, int) and isinstance(hi, int)
        assert hi > 200 and lo < 60


def test_contact_sheet_survives_a_broken_thumbnail(thumbs: list[bytes]) -> None:
    items = [thumbs[0], b"definitely not an image", thumbs[2][:40]]
    with Image.open(io.BytesIO(contact_sheet(items))) as im:
        assert im.size == (800, 272)
        rgb = im.convert("RGB")
        # The placeholder fills the whole cell, unlike the dark sheet background.
        assert rgb.getpixel((264 + 250, 8 + 250)) != (30, 31, 34)
        assert rgb.getpixel((264 + 250, 8 + 250)) == rgb.getpixel((520 + 250, 8 + 250))


def test_contact_sheet_rejects_empty_input() -> None:
    with pytest.raises(ValueError):
        contact_sheet([])


# --- concurrency ---------------------------------------------------------------------------


async def test_safe_to_run_concurrently_in_threads(bomb_png: bytes) -> None:
    good = encode(noise((300, 200)), "JPEG")
    results = await asyncio.gather(
        *(asyncio.to_thread(inspect_image, good, max_bytes=MB) for _ in range(6)),
        *(asyncio.to_thread(make_thumbnail, good) for _ in range(6)),
        *(asyncio.to_thread(inspect_image, bomb_png, max_bytes=MB) for _ in range(4)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ImageInfo) and r.aspect_ratio == "3:2" for r in results[:6])
    assert all(isinstance(r, bytes) and sniff_mime(r) == "image/webp" for r in results[6:12])
    assert all(isinstance(r, ImageProblem) and r.code == "too_many_pixels" for r in results[12:])


def test_thumbnail_of_small_rgb_jpeg() -> None:
    """Regression: an RGB JPEG already smaller than the thumbnail needed no conversion, so the
    still-lazy source image was encoded after its file had closed."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(buffer, "JPEG")
    thumb = make_thumbnail(buffer.getvalue())
    assert Image.open(io.BytesIO(thumb)).size == (40, 40)


# --- shrink_input ----------------------------------------------------------------------------


def test_shrink_input_brings_a_big_photo_down_to_what_the_model_uses() -> None:
    photo = encode(solid((3000, 2000), RED), "JPEG", quality=90)
    small, mime = shrink_input(photo, max_bytes=10 * MB, max_pixels=25_000_000, max_side=2048)
    assert mime == "image/jpeg"
    with Image.open(io.BytesIO(small)) as im:
        assert max(im.size) == 2048 and im.size[0] / im.size[1] == pytest.approx(1.5, 0.01)


def test_shrink_input_keeps_a_small_image_as_it_was() -> None:
    data = encode(solid((300, 200), BLUE), "PNG")
    assert shrink_input(data, max_bytes=MB, max_pixels=10**6, max_side=2048) == (data, "image/png")


def test_shrink_input_keeps_real_transparency() -> None:
    im = Image.new("RGBA", (2600, 100), (0, 0, 0, 0))
    small, mime = shrink_input(encode(im, "PNG"), max_bytes=MB, max_pixels=10**7, max_side=1024)
    assert mime == "image/png"
    with Image.open(io.BytesIO(small)) as out:
        assert out.mode == "RGBA" and out.size[0] == 1024


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"x" * 2000, "too_large"),
        (b"not an image at all", "not_image"),
    ],
)
def test_shrink_input_refuses_what_inspect_refuses(data: bytes, code: str) -> None:
    with pytest.raises(ImageProblem) as problem:
        shrink_input(data, max_bytes=1000, max_pixels=10**6, max_side=512)
    assert problem.value.code == code


def test_shrink_input_has_its_own_pixel_limit_checked_from_the_header() -> None:
    big = encode(Image.new("1", (5000, 5000)), "PNG")  # tiny file, 25 MP
    with pytest.raises(ImageProblem) as problem:
        shrink_input(big, max_bytes=MB, max_pixels=20_000_000, max_side=2048)
    assert problem.value.code == "too_many_pixels" and problem.value.detail["width"] == 5000
