"""The printed QR image of a live code: PNG or SVG at print sizes.

The image encodes only the code's public landing URL (built from ``LiveCode.code``), so a code
that is already printed keeps working whatever guides, rule or caps are put behind it later.
segno makes the symbol (pure Python, PNG and SVG, ISO/IEC 18004 compliant); error correction M
with a 4-module quiet zone survives a slightly worn or creased parcel card.
"""
import io
from dataclasses import dataclass
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.urls import reverse

DPI = 300
CM_PER_INCH = 2.54
# Printed widths offered in the dashboard: a parcel card, a counter stand, a door sign or poster.
SIZES_CM = (5, 8, 12)
DEFAULT_SIZE_CM = 8
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
BORDER = 4


@dataclass(frozen=True)
class QrImage:
    content: bytes
    content_type: str
    extension: str


LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(url):
    return (urlsplit(url).hostname or "") in LOOPBACK


def public_url(live_code, request=None):
    """The absolute landing URL printed in the code: the site's public address (SITE_URL), else
    the address the dashboard was opened at. A loopback SITE_URL (the unconfigured default) gives
    way to the request's host, since no customer's phone can open it."""
    path = reverse("landing:join", args=[live_code.code])
    base = (getattr(settings, "SITE_URL", "") or "").rstrip("/")
    if base and (request is None or not is_loopback(base)):
        return base + path
    if request is not None:
        return request.build_absolute_uri(path)
    return path


def symbol(url):
    return segno.make(url, error="m", micro=False)


def size_px(size_cm):
    return round(size_cm / CM_PER_INCH * DPI)


def render(url, fmt="png", size_cm=DEFAULT_SIZE_CM):
    """The QR image of ``url``, ``size_cm`` wide with its quiet zone, for printing at 300 dpi.

    PNG modules are whole pixels, so the PNG is at most ``size_cm`` wide (never blurred by
    scaling); the SVG carries its physical width in millimetres and is exact.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown QR format {fmt!r}")
    qr = symbol(url)
    modules = qr.symbol_size(scale=1, border=BORDER)[0]
    out = io.BytesIO()
    if fmt == "png":
        qr.save(out, kind="png", scale=max(1, size_px(size_cm) // modules), border=BORDER, dpi=DPI)
    else:
        qr.save(out, kind="svg", scale=size_cm * 10 / modules, border=BORDER, unit="mm", xmldecl=True,
                light="#fff", title=url)
    return QrImage(out.getvalue(), FORMATS[fmt], fmt)


def inline_svg(url):
    """An SVG element to put in a page (no fixed size: the page's CSS sizes it)."""
    out = io.BytesIO()
    symbol(url).save(out, kind="svg", border=BORDER, xmldecl=False, svgns=True, omitsize=True, light="#fff",
                     svgclass="qr-svg", lineclass=None)
    return out.getvalue().decode()
