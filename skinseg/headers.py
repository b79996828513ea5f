"""What an image file's first bytes say, before anything is decoded.

`sniff` names the format and reads the size as the decoder will read it (a
JPEG's frame header found past stray bytes, the first of a TIFF size tag
given twice), or raises `ImageReadError` with a sentence a person
understands ("an HTML page named .jpg"); `damage` catches what decoders hide
(a truncated JPEG decodes to grey); `size_problem` is the one size rule of a
build and of `Segmenter.segment`; `plain_jpeg` says whether a file's bytes
can stand for its decoded pixels.  So a decompression bomb is refused
without being allocated.

Imports nothing heavy: struct and zlib only.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

MIN_SIDE = 16      # smaller images carry no usable skin region (and break morphology)
MAX_SIDE = 65500   # the longest side a JPEG can have (the skin-only image is a JPEG by default)


class ImageReadError(ValueError):
    """The file (or bytes) cannot be used as an image; str(exc) is the reason."""


@dataclass(frozen=True)
class Header:
    format: str                       # 'jpeg', 'png', 'bmp', 'webp', 'tiff'
    size: Optional[tuple[int, int]]   # (width, height) when the header says


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from the frame header (SOF), found as libjpeg finds it:
    bytes before a marker that are not 0xFF are skipped (libjpeg warns about
    "extraneous bytes" and decodes anyway), so a stray byte cannot hide the
    frame header from this check.  None when no SOF comes before the scan
    data (SOS) or the end of the file."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:             # garbage between segments: resynchronise on the next 0xFF
            i += 1
            continue
        while i < n and data[i] == 0xFF:    # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            continue                    # no length field (0x00: a stuffed byte, skipped like garbage)
        if marker in (0xD9, 0xDA):      # EOI, or SOS before any frame header
            return None
        if i + 2 > n:
            return None
        length = struct.unpack(">H", data[i:i + 2])[0]
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 7 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 3:i + 7])
            return width, height
        if length < 2:
            return None
        i += length
    return None


def plain_jpeg(data: bytes) -> bool:
    """A JPEG that every reader decodes to the pixels decode_image gives:
    well-formed segments up to the scan, a baseline, extended or progressive
    frame of 8-bit samples in 3 components, no EXIF rotation, an end marker.
    Its bytes can then stand for the decoded image (written as is, not
    compressed a second time).  Stricter than _jpeg_size's walk, which reads
    the size as libjpeg does (stray bytes skipped) for the --max-pixels
    check: a file that is copied must have none."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return False
    i, n, frame = 2, len(data), False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False                # stray bytes: a reader may give up where OpenCV did not
        marker = data[i + 1]
        if marker == 0xFF:              # fill byte
            i += 1
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segment = data[i + 4:i + 2 + length]
        if length < 2 or len(segment) != length - 2:
            return False
        if marker == 0xDA:              # start of scan: the frame header came first
            return frame
        if marker in (0xC0, 0xC1, 0xC2):
            frame = len(segment) >= 6 and segment[0] == 8 and segment[5] == 3
            if not frame:
                return False
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xCC):
            return False                # lossless, hierarchical or arithmetic-coded frames
        elif marker == 0xE1 and segment[:6] == b"Exif\x00\x00" and _exif_orientation(segment[6:]) != 1:
            return False
        i += 2 + length
    return False


def _first_directory(tiff: bytes, order: str) -> Iterator[tuple[int, int, bytes]]:
    """(tag, type, value field) of every entry of a TIFF's first image
    directory (a TIFF file and an EXIF block share the layout); order is the
    struct byte order.  Raises struct.error where the data is cut short."""
    (offset,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[offset:offset + 2])
    for k in range(count):
        entry = tiff[offset + 2 + 12 * k:offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        yield tag, kind, entry[8:12]


def _exif_orientation(tiff: bytes) -> Optional[int]:
    """The orientation tag of EXIF's first image directory: 1 when absent,
    None when the directory cannot be read."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        for tag, kind, value in _first_directory(tiff, order):
            if tag == 0x0112:
                return struct.unpack(order + "H", value[:2])[0] if kind == 3 else None
        return 1
    except (KeyError, struct.error):
        return None


def _tiff_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from a TIFF's first image directory, read as libtiff
    (OpenCV's TIFF decoder) reads it: of a tag given twice, the first (so a
    second, smaller width cannot get a large image past --max-pixels)."""
    endian = "<" if data[:2] == b"II" else ">"
    formats = {1: "B", 3: "H", 4: "I"}          # BYTE, SHORT, LONG: the types a size may have
    try:
        size: dict[int, int] = {}
        for tag, kind, field in _first_directory(data, endian):
            if tag in (256, 257) and tag not in size:
                if kind not in formats:
                    return None
                size[tag] = struct.unpack_from(endian + formats[kind], field)[0]
        width, height = size.get(256), size.get(257)
        return (width, height) if width and height else None
    except struct.error:
        return None


def _bmp_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from a BMP's header: 16-bit in the 12-byte header of
    OS/2 1.x (BITMAPCOREHEADER), 32-bit (height negative: rows top-down) in
    every later one."""
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        return struct.unpack("<HH", data[18:22])
    if header < 16:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)


def _webp_size(data: bytes) -> Optional[tuple[int, int]]:
    chunk = data[12:16]
    try:
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
    except struct.error:
        return None
    return None


def sniff(data: bytes) -> Header:
    """Identify the image format from its first bytes; raise if it is not one."""
    if not data:
        raise ImageReadError("the file is empty (0 bytes)")
    if data[:3] == b"\xff\xd8\xff":
        return Header("jpeg", _jpeg_size(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        size = struct.unpack(">II", data[16:24]) if len(data) >= 24 and data[12:16] == b"IHDR" else None
        return Header("png", tuple(size) if size else None)
    if data[:2] == b"BM" and len(data) >= 26:
        return Header("bmp", _bmp_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Header("webp", _webp_size(data))
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return Header("tiff", _tiff_size(data))
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise ImageReadError("not an image: the file is an HTML page (a failed download saved under an image name?)")
    if head.startswith((b"<?xml", b"<svg")):
        raise ImageReadError("not an image: the file is XML/SVG text, which is not supported")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        raise ImageReadError("GIF images are not supported (convert to PNG)")
    try:
        data[:512].decode("utf-8")
        raise ImageReadError("not an image: the file is plain text")
    except UnicodeDecodeError:
        pass
    raise ImageReadError("not an image: the file content matches no supported image format "
                         "(JPEG, PNG, BMP, WebP, TIFF)")


def _png_damage(data: bytes) -> Optional[str]:
    """Walk the PNG chunks: a reason if one is cut off or fails its CRC."""
    position = 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        kind = data[position + 4:position + 8]
        end = position + 12 + length
        if end > len(data):
            return "the PNG file is truncated (its end is missing)"
        crc = struct.unpack(">I", data[end - 4:end])[0]
        if zlib.crc32(data[position + 4:end - 4]) != crc:
            name = kind.decode("latin-1") if kind.isalpha() else "?"
            return f"the PNG file is damaged: its {name} chunk fails the CRC check"
        if kind == b"IEND":
            return None
        position = end
    return "the PNG file is truncated (its end is missing)"


def damage(header: Header, data: bytes) -> Optional[str]:
    """Catch damage that decoders hide: libjpeg fills a cut-off JPEG with grey
    and reports success."""
    if header.format == "jpeg" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return "the JPEG file is truncated (its end is missing)"
    if header.format == "png":
        return _png_damage(data)
    return None


def size_problem(width: int, height: int, max_pixels: int, limit: str = "--max-pixels") -> Optional[str]:
    """Why an image of width x height pixels is not processed, or None: the
    one rule of a build (from the file's header, before decoding) and of
    Segmenter.segment.  limit names the max_pixels setting in the message."""
    if min(width, height) < MIN_SIDE:
        return (f"the image is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed to find "
                "skin in it")
    if width * height > max_pixels:
        return (f"the image is {width}x{height} ({width * height / 1e6:.0f} megapixels), above the limit of "
                f"{max_pixels / 1e6:.0f} megapixels ({limit})")
    if max(width, height) > MAX_SIDE:
        return (f"the image is {width}x{height} pixels; a side longer than {MAX_SIDE} pixels cannot be written "
                "as JPEG (its limit), and is no photo of skin")
    return None
