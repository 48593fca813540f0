"""Schemathesis hooks for `tests/openapi_schemathesis.rs`: real files for the media types the
spamlens server documents and Schemathesis has no sample of.

Schemathesis sends a real file for `image/png`, `image/jpeg`, `image/gif` and `image/webp` bodies
in positive mode; for the other image types the server reads (BMP, TIFF, ICO) and for
`message/rfc822` it would send random bytes, which the server rightly refuses (422 / 400). These
strategies make schema-valid bodies of those types what the type names: small images of random
size and colour, and RFC 5322 messages with random text and an optional image part.
"""

import struct
import zlib
from email.message import EmailMessage
from email.policy import SMTP

import schemathesis
from hypothesis import strategies as st

sizes = st.integers(min_value=1, max_value=40)
colours = st.tuples(*(st.integers(min_value=0, max_value=255),) * 3)


def png(width, height, rgb, alpha=False):
    """An 8-bit RGB (or opaque RGBA) PNG filled with one colour."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    pixel = bytes(rgb) + (b"\xff" if alpha else b"")
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def bmp(width, height, rgb):
    """A 24-bit uncompressed BMP filled with one colour."""
    row = bytes(reversed(rgb)) * width
    row += b"\x00" * ((4 - len(row) % 4) % 4)
    pixels = row * height
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def tiff(width, height, rgb):
    """A baseline little-endian uncompressed RGB TIFF (one strip) filled with one colour."""
    pixels = bytes(rgb) * (width * height)
    entries = 10
    ifd_offset = 8
    bits_offset = ifd_offset + 2 + entries * 12 + 4
    pixels_offset = bits_offset + 6
    short, long_ = 3, 4
    fields = [
        (256, long_, 1, width),
        (257, long_, 1, height),
        (258, short, 3, bits_offset),
        (259, short, 1, 1),
        (262, short, 1, 2),
        (273, long_, 1, pixels_offset),
        (277, short, 1, 3),
        (278, long_, 1, height),
        (279, long_, 1, len(pixels)),
        (284, short, 1, 1),
    ]
    out = b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", entries)
    for tag, kind, count, value in fields:
        if kind == short and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8)
    return out + pixels


def ico(width, height, rgb):
    """An ICO holding one PNG image (RGBA, as ICO requires)."""
    image = png(width, height, rgb, alpha=True)
    entry = struct.pack("<BBBBHHII", width % 256, height % 256, 0, 0, 1, 32, len(image), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + image


def images(encode):
    return st.builds(encode, sizes, sizes, colours)


schemathesis.openapi.media_type("image/bmp", images(bmp))
schemathesis.openapi.media_type("image/tiff", images(tiff))
schemathesis.openapi.media_type("image/x-icon", images(ico), aliases=["image/vnd.microsoft.icon"])

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=200)


@st.composite
def messages(draw):
    """An RFC 5322 message: random subject and body, and maybe an image part."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "sender@example.org"
    message["To"] = "user@example.org"
    message["Subject"] = draw(text).replace("\n", " ").replace("\r", " ")
    message["Message-ID"] = f"<{draw(st.integers(min_value=0))}@example.org>"
    message.set_content(draw(text))
    if draw(st.booleans()):
        encode = draw(st.sampled_from([("png", png), ("bmp", bmp), ("tiff", tiff)]))
        subtype, function = encode
        data = function(draw(sizes), draw(sizes), draw(colours))
        message.add_attachment(data, maintype="image", subtype=subtype, filename=f"image.{subtype}")
    return message.as_bytes()


schemathesis.openapi.media_type("message/rfc822", messages())
