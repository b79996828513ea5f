import os
import struct

import cv2
import numpy as np
import pytest

from conftest import skin_image, with_exif_orientation
from skinseg.atomic import atomic_write_bytes, remove_temp_files
from skinseg.encoding import encode_image
from skinseg.headers import ImageReadError, sniff
from skinseg.imageio import decode_image, read_image

LIMIT = 100_000_000


def encode(image, ext=".png", params=()):
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_sniff_reads_size_without_decoding(ext):
    header = sniff(encode(np.zeros((37, 53, 3), np.uint8), ext))
    assert header.size == (53, 37)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
    (b"just some notes\n", "plain text"),
    (bytes(range(256)) * 4, "matches no supported image format"),
    (b"GIF89a" + b"\x00" * 20, "GIF"),
])
def test_not_an_image_is_named(data, message):
    with pytest.raises(ImageReadError, match=message):
        decode_image(data, LIMIT)


def test_truncated_jpeg_and_png_fail():
    img = skin_image(200, 160)
    for ext in (".jpg", ".png"):
        data = encode(img, ext)
        with pytest.raises(ImageReadError, match="truncated"):
            decode_image(data[: len(data) // 2], LIMIT)


def test_huge_declared_size_is_refused_before_decoding():
    data = bytearray(encode(np.zeros((20, 20, 3), np.uint8), ".png"))
    data[16:24] = struct.pack(">II", 30000, 30000)    # IHDR width/height
    with pytest.raises(ImageReadError, match="30000x30000.*--max-pixels"):
        decode_image(bytes(data), LIMIT)


def test_tiny_image_is_refused():
    with pytest.raises(ImageReadError, match="only 2x2 pixels"):
        decode_image(encode(np.zeros((2, 2, 3), np.uint8)), LIMIT)


def test_grayscale_16bit_and_alpha_become_8bit_bgr():
    gray = np.full((30, 40), 200, np.uint8)
    out = decode_image(encode(gray), LIMIT)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8 and (out == 200).all()

    deep = np.full((30, 40, 3), 40000, np.uint16)
    out = decode_image(encode(deep), LIMIT)
    assert out.dtype == np.uint8 and abs(int(out[0, 0, 0]) - 40000 // 257) <= 1

    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., :3] = (120, 150, 210)          # skin colour everywhere ...
    rgba[:, 20:, 3] = 255                    # ... but the left half is transparent
    out = decode_image(encode(rgba), LIMIT)
    assert (out[:, :20] == 0).all()
    assert (out[:, 20:] == (120, 150, 210)).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_pixels(orientation):
    # Build the stored (sideways) image so that, once the orientation is
    # applied, a bright block sits at the top-left of a 40x20 (w x h) image.
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:6, :10] = 255
    inverse = {1: lambda a: a, 2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
               4: lambda a: cv2.flip(a, 0), 5: lambda a: cv2.transpose(a),
               6: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
               7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
               8: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)}[orientation]
    stored = encode(inverse(upright), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    out = decode_image(with_exif_orientation(stored, orientation), LIMIT)
    assert out.shape[:2] == (20, 40)
    bright = out[..., 0] > 128
    ys, xs = np.nonzero(bright)
    assert ys.mean() < 5 and xs.mean() < 8


def test_pillow_made_kinds_are_converted(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rgb = PIL.new("RGB", (40, 30), (210, 150, 120))
    cases = {
        "cmyk.jpg": rgb.convert("CMYK"),
        "palette.png": rgb.convert("P"),
        "gray_alpha.png": rgb.convert("LA"),
        "gray.jpg": rgb.convert("L"),
    }
    for name, image in cases.items():
        path = tmp_path / name
        image.save(path)
        out = read_image(path, LIMIT)
        assert out.shape == (30, 40, 3) and out.dtype == np.uint8, name
    cmyk = read_image(tmp_path / "cmyk.jpg", LIMIT)
    assert np.abs(cmyk.astype(int)[15, 20] - (120, 150, 210)).max() < 12


def test_read_errors_are_sentences(tmp_path):
    with pytest.raises(ImageReadError, match="disappeared"):
        read_image(tmp_path / "missing.jpg", LIMIT)
    link = tmp_path / "broken.jpg"
    link.symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(ImageReadError, match="broken symbolic link"):
        read_image(link, LIMIT)


def test_atomic_write_leaves_no_temp_on_error(tmp_path, monkeypatch):
    target = tmp_path / "out" / "a.png"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", failing_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]


def test_remove_temp_files(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / ".a.png.skinseg-tmp-123").write_bytes(b"partial")
    (tmp_path / "x" / "a.png").write_bytes(b"done")
    assert remove_temp_files(tmp_path) == 1
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["a.png"]


def test_outputs_get_normal_file_permissions(tmp_path):
    target = tmp_path / "a.png"
    atomic_write_bytes(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_jpeg_size_is_found_past_stray_bytes_and_required():
    data = encode(np.zeros((37, 53, 3), np.uint8), ".jpg")
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    assert sniff(data[:sof] + b"\x00\x17" + data[sof:]).size == (53, 37)
    without_sof = data[:sof] + data[sof + 2 + struct.unpack(">H", data[sof + 2:sof + 4])[0]:]
    with pytest.raises(ImageReadError, match="does not give the image size"):
        decode_image(without_sof, LIMIT)


def test_reading_is_capped(tmp_path):
    from skinseg.reading import NotReadable, read_regular_file

    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 1000)
    assert len(read_regular_file(path, 1000)) == 1000
    with pytest.raises(NotReadable, match="more than"):
        read_regular_file(path, 999)


def test_masks_are_written_as_pngs_that_read_back_exactly():
    import io
    import zlib

    from PIL import Image

    mask = (np.random.default_rng(0).random((61, 97)) > 0.6).astype(np.uint8) * 3
    data = encode_image(mask, ".png")
    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == mask).all()
    assert (np.asarray(Image.open(io.BytesIO(data))) == mask).all()
    # No row filter (fast to read): every scanline starts with filter type 0.
    start = data.index(b"IDAT") + 4
    rows = np.frombuffer(zlib.decompress(data[start:start + int.from_bytes(data[start - 8:start - 4], "big")]),
                         np.uint8).reshape(61, 98)
    assert (rows[:, 0] == 0).all()
    wide = mask.astype(np.uint16) * 300                      # 16-bit masks: OpenCV's encoder
    assert (cv2.imdecode(np.frombuffer(encode_image(wide, ".png"), np.uint8), cv2.IMREAD_UNCHANGED) == wide).all()


def test_plain_jpegs_are_those_every_reader_decodes_as_opencv_does():
    from skinseg.headers import plain_jpeg

    colour = np.random.default_rng(1).integers(0, 255, (40, 60, 3), np.uint8)
    baseline = cv2.imencode(".jpg", colour)[1].tobytes()
    assert plain_jpeg(baseline)
    assert plain_jpeg(cv2.imencode(".jpg", colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
    assert plain_jpeg(with_exif_orientation(baseline, 1))
    assert not plain_jpeg(with_exif_orientation(baseline, 6))           # turned upright on decoding
    assert not plain_jpeg(cv2.imencode(".jpg", colour[..., 0])[1].tobytes())   # grey: one component
    assert not plain_jpeg(baseline[:-100])                               # truncated
    assert not plain_jpeg(baseline[:2] + b"\x00" + baseline[2:])         # a stray byte before a marker
    assert not plain_jpeg(cv2.imencode(".png", colour)[1].tobytes())
