"""Partner logos: checked, decoded and re-encoded on the server.

Only PNG, JPEG and WebP are taken, and only when the content is the type the file claims to
be. The image's size is read from its header before anything is decoded, so a small file
that unpacks to billions of pixels (a pixel flood) is refused without using the memory.
Re-encoding to a PNG of at most 512 × 512 drops all metadata (EXIF, location, comments).
Decoding takes up to a quarter of a second, so callers run `process_logo` in the image pool
(`read_logo`), never on the event loop.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.web.i18n import _

MAX_BYTES = 1_000_000
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE
STORED_SIDE = 512
FORMATS = {
    "PNG": ("image/png", {".png"}),
    "JPEG": ("image/jpeg", {".jpg", ".jpeg"}),
    "WEBP": ("image/webp", {".webp"}),
}
CLAIMED_TYPES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/webp": "WEBP",
}

# Pillow's own guard, as a second line behind the header check below.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def too_many_pixels() -> str:
    return _("The logo has too many pixels. Use at most 4096 × 4096.")


class LogoError(ValueError):
    """The message says what is wrong with the file, for the form."""


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    etag: str


def process_logo(data: bytes, filename: str = "", content_type: str = "") -> Logo:
    if not data:
        raise LogoError(_("Choose an image for the logo."))
    if len(data) > MAX_BYTES:
        raise LogoError(_("The logo is larger than 1 MB. Choose a smaller image."))
    lowered = filename.lower()
    if lowered.endswith(".svg") or content_type == "image/svg+xml" or data.lstrip()[:1] == b"<":
        raise LogoError(
            _("SVG and other text files are not accepted. Choose a PNG, JPEG or WebP image.")
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image_format = image.format or ""
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LogoError(too_many_pixels()) from None
    except (UnidentifiedImageError, SyntaxError):
        raise LogoError(_("This file is not a PNG, JPEG or WebP image.")) from None
    except (OSError, ValueError):
        # A chunk that is cut off, or a text or colour-profile chunk that inflates past
        # Pillow's limit (a zip bomb in zTXt or iCCP).
        raise LogoError(_("This image is damaged and cannot be read.")) from None
    if image_format not in FORMATS:
        raise LogoError(_("This file is not a PNG, JPEG or WebP image."))
    _check_claim(image_format, lowered, content_type)
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise LogoError(too_many_pixels())
    try:
        image.load()
        pixels = image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise LogoError(_("This image is damaged and cannot be read.")) from None
    pixels.thumbnail((STORED_SIDE, STORED_SIDE))
    output = io.BytesIO()
    pixels.save(output, format="PNG", optimize=True)
    stored = output.getvalue()
    return Logo(stored, "image/png", hashlib.sha256(stored).hexdigest()[:32])


def _check_claim(image_format: str, filename: str, content_type: str) -> None:
    """A file named or sent as one image type must be that type."""
    extensions = FORMATS[image_format][1]
    known_extension = next(
        (
            ext
            for _format, (_type, exts) in FORMATS.items()
            for ext in exts
            if filename.endswith(ext)
        ),
        None,
    )
    if known_extension and known_extension not in extensions:
        raise LogoError(
            _("This file is not the image type its name says. Save it again as PNG, JPEG or WebP.")
        )
    claimed = CLAIMED_TYPES.get(content_type)
    if claimed and claimed != image_format:
        raise LogoError(
            _("This file is not the image type its name says. Save it again as PNG, JPEG or WebP.")
        )
