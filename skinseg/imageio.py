"""Reading source images safely and writing outputs atomically.

`read_image` turns any supported file into an upright 8-bit BGR array or
raises `ImageReadError` with a sentence a person understands.  The header is
inspected before decoding so that a decompression bomb is refused without
allocating it, and so that "an HTML page named .jpg" is reported as such
instead of as a generic decode failure.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import cv2
import numpy as np

from . import _faults
from .layout import is_temp_name, temp_prefix


def _file_mode() -> int:
    """The mode open() would give a new file (mkstemp would give 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()
MIN_SIDE = 16      # smaller images carry no usable skin region (and break morphology)
MAX_SIDE = 65500   # the longest side a JPEG can have (the skin-only image is a JPEG by default)


class ImageReadError(Exception):
    """The file cannot be used as an image; str(exc) is the reason."""


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


def _damage(header: Header, data: bytes) -> Optional[str]:
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


REDUCED_DECODE = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, max_pixels: int, reduce: int = 1) -> np.ndarray:
    """Bytes -> upright (EXIF applied) 8-bit BGR array, or ImageReadError.

    reduce 2, 4 or 8 decodes a JPEG at that fraction of its size (the decoder
    skips the work, several times faster: for thumbnails); sizes round up.
    Other formats ignore it.
    """
    header = sniff(data)
    if header.size is None:
        # Without a size the --max-pixels check cannot be made before decoding.
        raise ImageReadError(f"the {header.format.upper()} header does not give the image size "
                             "(damaged or unusual file); not decoded")
    width, height = header.size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"the {header.format.upper()} header declares an empty image ({width}x{height})")
    problem = size_problem(width, height, max_pixels)
    if problem:
        raise ImageReadError(f"{problem}; not decoded")
    damage = _damage(header, data)
    if damage:
        raise ImageReadError(damage)
    buffer = np.frombuffer(data, np.uint8)
    # IMREAD_COLOR applies the EXIF orientation and converts grey, palette,
    # CMYK and 16-bit images to 8-bit BGR.
    flags = REDUCED_DECODE.get(reduce, cv2.IMREAD_COLOR) if header.format == "jpeg" else cv2.IMREAD_COLOR
    image = cv2.imdecode(buffer, flags)
    if image is None:
        raise ImageReadError(f"the {header.format.upper()} data is corrupt and could not be decoded")
    if header.format in ("png", "webp", "tiff"):
        image = _composite_alpha(buffer, image)
    return image


def _composite_alpha(buffer: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """Put transparent pixels on black: their stored colour is arbitrary and
    must not be mistaken for skin."""
    full = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4 or full.shape[:2] != bgr.shape[:2]:
        return bgr
    alpha = full[:, :, 3]
    if alpha.dtype != np.uint8:
        alpha = (alpha >> 8).astype(np.uint8)
    if alpha.min() == 255:
        return bgr
    return on_black(bgr, alpha)


def on_black(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """8-bit colour laid over black by its 8-bit alpha (transparent is black)."""
    return cv2.multiply(np.ascontiguousarray(bgr), cv2.merge([alpha, alpha, alpha]), scale=1 / 255)


def downscaled(bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk (INTER_AREA) so its long side is at most max_side, and the scale used."""
    height, width = bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return bgr, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), scale


class NotReadable(Exception):
    """A path that must not be read as a file: not a regular file, or too
    large.  str(exc) says why."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        raise NotReadable(f"not a regular file: this is {kind}; not read")


READ_CHUNK = 64 * 2**20


def _read_capped(handle: BinaryIO, size: int, limit: int) -> bytes:
    """At most limit + 1 bytes of an open file whose size is said to be
    size.  Memory follows the bytes read, not the limit (read(n) reserves n
    bytes first: a --max-pixels of 10^10 would ask for 80 GB): the said size
    in one read, then, for a file that grew or says 0 (/proc), chunks."""
    data = handle.read(size + 1)
    if len(data) <= size:
        return data
    parts, total = [data], len(data)
    while total <= limit:
        chunk = handle.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Anything else is refused before it is read: a named pipe would block
    forever and a link to /dev/zero never ends.  The file is opened
    non-blocking (a pipe swapped in after the check cannot block the open)
    and checked again once open.  Raises NotReadable, or OSError as open()
    does.
    """
    _require_regular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        _require_regular(st.st_mode)
        data = _read_capped(handle, st.st_size, limit) if st.st_size <= limit else b""
    if st.st_size > limit or len(data) > limit:
        raise NotReadable(f"the file is {max(st.st_size, len(data)) / 1e6:.0f} MB, more than {limit / 1e6:.0f} MB; "
                          "not read")
    return data


def max_file_bytes(max_pixels: int) -> int:
    """The largest file an image of max_pixels can plausibly be: 8 bytes a
    pixel (16-bit RGBA, uncompressed) plus room for metadata."""
    return 8 * max_pixels + 64 * 2**20


def read_image(path: Path, max_pixels: int, reduce: int = 1) -> np.ndarray:
    """Read a source image file; see decode_image."""
    return decode_image(read_source(path, max_pixels), max_pixels, reduce)


OUTPUT_BYTES = 2**31       # read_output's cap: far above any file the tool writes


def read_output(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> Optional[np.ndarray]:
    """A file this tool wrote (mask, image), decoded as stored; None when it
    is missing, empty, unreadable or not a regular file (a named pipe put in
    its place is not waited on: the file is then made again)."""
    try:
        data = read_regular_file(path, OUTPUT_BYTES)
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    except (OSError, NotReadable, cv2.error):
        return None


def read_source(path: Path, max_pixels: int) -> bytes:
    """A source image file's bytes (regular files only, capped), or ImageReadError."""
    try:
        return read_regular_file(path, max_file_bytes(max_pixels))
    except NotReadable as exc:
        raise ImageReadError(str(exc)) from None
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError("broken symbolic link: its target does not exist") from None
        raise ImageReadError("the file disappeared before it could be read") from None
    except PermissionError:
        raise ImageReadError("permission denied: the file cannot be read") from None
    except OSError as exc:
        raise ImageReadError(f"the file could not be read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- writing

def _same_content(path: Path, data: bytes) -> bool:
    try:
        return read_regular_file(path, len(data)) == data
    except (OSError, NotReadable):
        return False


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temp file next to path; on success it replaces path, on any
    error (or Ctrl-C) it is deleted.  So path is either absent/old or complete.

    The temp file sits in the same folder (same file system) and carries
    layout.TEMP_MARKER, so a process killed mid-write leaves only files that the next
    build recognises and removes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _faults.before_write(str(path))
            yield handle
            os.fchmod(handle.fileno(), FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path atomically (see atomic_file).  A file that already
    holds exactly these bytes is left alone, so a rebuild touches only
    outputs that changed."""
    if _same_content(path, data):
        return
    with atomic_file(path) as handle:
        handle.write(data)


def encode_image(image: np.ndarray, extension: str, jpeg_quality: int = 95) -> bytes:
    """JPEG at the given quality, or PNG: 8-bit one-channel images (masks) by
    encode_grey_png, others with OpenCV's defaults."""
    if extension == ".png" and image.dtype == np.uint8 and image.ndim == 2:
        return encode_grey_png(image)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if extension == ".jpg" else []
    ok, encoded = cv2.imencode(extension, image, params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {extension} image of shape {image.shape}")
    return encoded.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(pixels: np.ndarray, colour_type: int, palette_rgb: Optional[list[tuple[int, int, int]]] = None) -> bytes:
    """An 8-bit, one byte per pixel PNG: no row filter, zlib level 1 with
    run-length matching.  Masks are mostly long runs: as fast to write as
    OpenCV's PNG, smaller, and much faster to read (OpenCV filters every row,
    which readers undo: 6.5 ms against 4.0 ms a 1.6-megapixel mask)."""
    height, width = pixels.shape
    rows = np.empty((height, width + 1), np.uint8)
    rows[:, 0] = 0                                  # filter type "none" for every scanline
    rows[:, 1:] = pixels
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(rows.tobytes()) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    palette = [] if palette_rgb is None else [_png_chunk(b"PLTE", b"".join(bytes(c) for c in palette_rgb))]
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header), *palette, _png_chunk(b"IDAT", data),
                     _png_chunk(b"IEND", b"")])


def encode_grey_png(pixels: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG (a mask)."""
    return _png(pixels, 0)


def encode_indexed_png(indices: np.ndarray, palette_rgb: list[tuple[int, int, int]]) -> bytes:
    """An 8-bit palette PNG: one byte per pixel plus a colour table.

    For a colour preview of a mask this is a third of the work of a 3-channel
    PNG and a fraction of its size, and every viewer shows it in colour.
    """
    return _png(indices, 3, palette_rgb)


def grey_png_with_palette(grey_png: bytes, palette_rgb: list[tuple[int, int, int]]) -> bytes:
    """The same pixels as an 8-bit greyscale PNG, shown through a colour table.

    A palette PNG stores one index per pixel exactly like a greyscale PNG, so
    the compressed pixel data can be reused unchanged: only the colour type
    in the header changes and a PLTE chunk is added.  The colour preview of
    a mask then costs nothing to compress.
    """
    if grey_png[:8] != b"\x89PNG\r\n\x1a\n" or grey_png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    header = bytearray(grey_png[16:29])
    if header[8:10] != b"\x08\x00":
        raise ValueError("not an 8-bit greyscale PNG")
    header[9] = 3                                        # colour type 3: palette
    palette = b"".join(bytes(c) for c in palette_rgb)
    return (grey_png[:8] + _png_chunk(b"IHDR", bytes(header)) + _png_chunk(b"PLTE", palette)
            + grey_png[33:])


def remove_temp_files(folder: Path) -> int:
    """Delete temp files that a killed build left below folder; return the count."""
    removed = 0
    if not folder.is_dir():
        return 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if is_temp_name(name):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed
