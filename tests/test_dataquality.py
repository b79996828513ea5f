"""The per-image measures (dataquality), the near-duplicate search (neardup)
and the findings made of records (datachecks), each alone, on synthetic
arrays; the thresholds also on real photos of the evaluation sets."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from skinseg import dataquality as dq
from skinseg import neardup
from skinseg.buildinfo import (
    ACROSS_CLASSES,
    ACROSS_SPLITS,
    WITHIN_CLASS,
    BuildInfoError,
    DataChecks,
    parse_build_info,
)
from skinseg.datachecks import assess
from skinseg.imageio import decode_image, downscaled


def scene(seed: int, height: int = 480, width: int = 640) -> np.ndarray:
    """A photo-like image: smooth colour fields, a few shapes, fine texture."""
    rng = np.random.default_rng(seed)
    field = rng.random((height // 40 + 2, width // 40 + 2, 3)).astype(np.float32) * 255
    image = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(rng.integers(20, height // 3)), (rng.random(3) * 255).tolist(), -1)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def phash(bgr: np.ndarray) -> int:
    return dq.perceptual_hash(dq.grey(downscaled(bgr, 640)[0]))


def jpeg(bgr: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


# ------------------------------------------------------------------ dataquality

@pytest.mark.parametrize("copy", [
    lambda b: jpeg(b, 50),
    lambda b: jpeg(b, 90),
    lambda b: cv2.resize(b, (320, 240), interpolation=cv2.INTER_AREA),
    lambda b: cv2.resize(b, (1280, 960), interpolation=cv2.INTER_CUBIC),
    lambda b: jpeg(cv2.resize(b, (160, 120), interpolation=cv2.INTER_AREA), 85),
    lambda b: b[3:-3, 3:-3],                                     # a border of 3 px trimmed
    lambda b: np.clip(b.astype(np.float32) * 1.1, 0, 255).astype(np.uint8),
    lambda b: (b * 0.8).astype(np.uint8),
], ids=["jpeg50", "jpeg90", "half", "double", "eighth+jpeg", "trimmed", "brighter", "darker"])
def test_copies_of_a_photo_stay_within_the_near_duplicate_distance(copy):
    for seed in range(5):
        original = scene(seed)
        assert dq.hamming(phash(original), phash(copy(original))) <= dq.NEAR_DISTANCE, seed


def test_different_photos_are_far_apart():
    hashes = [phash(scene(seed)) for seed in range(30)]
    distances = [dq.hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > dq.NEAR_DISTANCE
    assert 24 <= float(np.median(distances)) <= 40            # about half of the 64 bits


def test_the_hash_has_64_bits_about_half_set_and_fails_clearly_on_wrong_input():
    value = phash(scene(1))
    assert 0 <= value < 2**64 and 28 <= value.bit_count() <= 33
    assert dq.perceptual_hash(np.zeros((1, 1), np.uint8)) == 0        # one grey pixel: defined, no error
    for bad in (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), np.zeros((0, 8), np.uint8), [[1]]):
        with pytest.raises(ValueError, match="grey image"):
            dq.perceptual_hash(bad)
    with pytest.raises(ValueError, match="BGR image"):
        dq.grey(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="BGR image"):
        dq.pixel_digest(np.zeros((8, 8, 4), np.uint8))


def test_the_pixel_digest_is_the_pixels():
    image = scene(2)
    png = cv2.imdecode(cv2.imencode(".png", image)[1], cv2.IMREAD_COLOR)
    bmp = cv2.imdecode(cv2.imencode(".bmp", image)[1], cv2.IMREAD_COLOR)
    assert dq.pixel_digest(image) == dq.pixel_digest(png) == dq.pixel_digest(bmp)
    assert len(dq.pixel_digest(image)) == dq.DIGEST_HEX
    changed = image.copy()
    changed[10, 10, 0] ^= 1
    assert dq.pixel_digest(changed) != dq.pixel_digest(image)
    # The same bytes in another shape are another picture.
    flat = np.arange(4 * 6 * 3, dtype=np.uint8)
    assert dq.pixel_digest(flat.reshape(4, 6, 3)) != dq.pixel_digest(flat.reshape(6, 4, 3))
    # A non-contiguous view (a crop) is hashed as its pixels.
    assert dq.pixel_digest(image[10:50, 20:90]) == dq.pixel_digest(image[10:50, 20:90].copy())


def test_blur_lowers_sharpness_and_a_blurred_copy_is_flagged():
    image = scene(3)
    sharp = dq.measure(image, image)
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    soft = dq.measure(blurred, blurred)
    assert sharp.sharpness > 2 * dq.SHARPNESS_BELOW and "blurry" not in sharp.flags()
    assert soft.sharpness < sharp.sharpness / 2 and "blurry" in soft.flags()
    # Sharpness does not depend on contrast; detail does.
    low = (image // 4).astype(np.uint8)
    assert dq.focus(dq.grey(low))[0] == pytest.approx(sharp.sharpness, rel=0.25)
    assert dq.focus(dq.grey(low))[1] < sharp.detail / 8
    flat = np.full((50, 60, 3), 128, np.uint8)
    assert dq.focus(dq.grey(flat)) == (0.0, 0.0)
    assert "blurry" in dq.measure(flat, flat).flags()            # nothing in it


def test_exposure_from_the_histogram():
    half = np.zeros((10, 20), np.uint8)
    half[:, 10:] = 255
    assert dq.exposure(half) == (127.5, 255, 0.5)
    dark = np.full((40, 40, 3), 30, np.uint8)
    dark[:1, :10] = 250                       # 10 bright pixels of 1600: fewer than 1 %
    checks = dq.measure(dark, dark)
    assert checks.luma_p99 == 30 and "dark" in checks.flags()
    # A black T-shirt with a lit hand is not dark: its brightest 1 % is bright.
    shirt = np.full((40, 40, 3), 10, np.uint8)
    shirt[:, :4] = 180
    assert "dark" not in dq.measure(shirt, shirt).flags()
    blown = np.full((40, 40, 3), 255, np.uint8)
    blown[:15] = 120                          # 62.5 % blown out
    assert dq.measure(blown, blown).clipped == pytest.approx(0.625)
    assert "overexposed" in dq.measure(blown, blown).flags()
    blown[:25] = 120                          # 37.5 %: a white backdrop behind a subject
    assert "overexposed" not in dq.measure(blown, blown).flags()


def test_checks_round_trip_through_a_record_and_damaged_ones_are_none():
    image = scene(4)
    checks = dq.measure(image, downscaled(image, 640)[0])
    stored = json.loads(json.dumps(checks.to_record()))
    again = dq.ImageChecks.from_record(stored)
    assert again is not None and again.phash == checks.phash and again.pixels == checks.pixels
    assert again.to_record() == stored
    for damaged in (None, "x", {**stored, "phash": "zz" * 8}, {**stored, "phash": "12"},
                    {**stored, "luma_p99": 3.5}, {**stored, "sharpness": True}, {**stored, "sharpness": "1"},
                    {k: v for k, v in stored.items() if k != "clipped"}):
        assert dq.ImageChecks.from_record(damaged) is None, damaged


def test_the_measures_on_real_photos(eval_dir):
    """Real photos: 089 and 090 of the abdomen set are one photo saved twice
    (the set holds it twice); the 46 Pratheepan family photos are all
    different and none is flagged; a blurred copy of each is."""
    def checks(path) -> dq.ImageChecks:
        bgr = decode_image(path.read_bytes(), 10**8)
        return dq.measure(bgr, downscaled(bgr, 640)[0])

    abdomen = eval_dir / "abdomen_train" / "images"
    a, b = checks(abdomen / "089.jpeg"), checks(abdomen / "090.jpeg")
    assert dq.hamming(a.phash, b.phash) <= dq.NEAR_DISTANCE and a.pixels != b.pixels
    family = sorted((eval_dir / "pratheepan_family" / "images").iterdir())
    found = [checks(p) for p in family]
    assert min(dq.hamming(x.phash, y.phash) for x, y in itertools.combinations(found, 2)) > dq.NEAR_DISTANCE
    assert not any(c.flags() for c in found)
    for path in family[:10]:
        small = downscaled(decode_image(path.read_bytes(), 10**8), 640)[0]
        blurred = cv2.GaussianBlur(small, (0, 0), 2)
        assert "blurry" in dq.measure(blurred, blurred).flags(), path.name


# ------------------------------------------------------------------ neardup

def _brute(hashes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    d = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(d <= radius)) if i < j}


def _clustered(seed: int, count: int = 1500) -> np.ndarray:
    """Random hashes, many of them a few bits from another (0-8 bits)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, count, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, count, dtype=np.uint64)
    for i in range(0, count, 3):
        source = int(rng.integers(0, count))
        flips = rng.choice(64, int(rng.integers(0, 9)), replace=False)
        hashes[i] = hashes[source] ^ np.uint64(sum(1 << int(f) for f in flips))
    return hashes


@pytest.mark.parametrize("radius", [0, 2, 4, 7])
def test_near_pairs_are_exactly_the_pairs_within_the_radius(radius):
    hashes = _clustered(radius)
    pairs = neardup.near_pairs(hashes, radius)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2
    assert {(int(i), int(j)) for i, j in pairs} == _brute(hashes, radius)
    assert len(pairs) > 20                          # planted pairs were there to find
    assert np.array_equal(pairs, np.unique(pairs, axis=0))      # sorted, each once


def test_near_pairs_in_small_chunks_are_the_same(monkeypatch):
    hashes = _clustered(9)
    expected = neardup.near_pairs(hashes, 4)
    monkeypatch.setattr(neardup, "CHUNK", 7)
    assert np.array_equal(neardup.near_pairs(hashes, 4), expected)
    # One band value shared by every hash: one run of 300, every pair a candidate.
    same_band = (np.arange(300, dtype=np.uint64) << np.uint64(20)) | np.uint64(0xABCDE)
    assert {(int(i), int(j)) for i, j in neardup.near_pairs(same_band, 4)} == _brute(same_band, 4)


def test_groups_join_chains_and_copies_in_a_fixed_order():
    base = np.uint64(0x0F0F_0F0F_0F0F_0F0F)
    hashes = np.array([base, 12345, base ^ np.uint64(0b11), 2**63 + 7, base ^ np.uint64(0b1111_0000_0011),
                       2**63 + 7, 999, 2**63 + 7], dtype=np.uint64)
    # 0 - 2 (2 bits), 2 - 4 (4 bits): one chain, though 0 and 4 are 6 apart; 3, 5, 7 are equal.
    assert neardup.groups(hashes, 4) == [[0, 2, 4], [3, 5, 7]]
    assert neardup.groups(hashes, 0) == [[3, 5, 7]]
    assert neardup.groups(np.array([], dtype=np.uint64), 4) == []
    # The same groups whatever the input order.
    permutation = np.random.default_rng(0).permutation(len(hashes))
    shuffled = neardup.groups(hashes[permutation], 4)
    assert sorted(sorted(int(permutation[i]) for i in g) for g in shuffled) == [[0, 2, 4], [3, 5, 7]]


def test_the_search_refuses_what_it_cannot_search():
    with pytest.raises(ValueError, match="uint64"):
        neardup.near_pairs(np.array([1, 2], dtype=np.int64), 4)
    with pytest.raises(ValueError, match="radius"):
        neardup.groups(np.array([1, 2], dtype=np.uint64), 16)


# ------------------------------------------------------------------ datachecks

def record(source: str, status: str = "written", checks: object = "scene", seed: int = 0, **measures):
    split, class_name = source.split("/")[:2]
    if checks == "scene":
        image = scene(seed)
        checks = {**dq.measure(image, image).to_record(), **measures}
    return SimpleNamespace(source=source, split=split, class_name=class_name, status=status, checks=checks)


def test_assess_groups_duplicates_by_where_they_are_and_flags_the_bad_photos():
    records = [
        record("train/A/1.jpg", seed=1), record("test/A/1.jpg", seed=1),                 # exact, across splits
        record("train/A/2.jpg", seed=2), record("train/B/2.jpg", seed=2, pixels="0" * 16),   # near, across classes
        record("valid/B/3.jpg", seed=3), record("valid/B/4.jpg", seed=3),                 # exact, within a class
        record("train/B/5.jpg", seed=5, sharpness=1.0), record("train/A/6.jpg", seed=6, luma_p99=20),
        record("train/A/7.jpg", seed=7, clipped=0.7), record("train/A/8.jpg", seed=8, sharpness=3.0, luma_p99=40),
        record("train/A/9.jpg", "skipped", seed=1), record("test/B/9.jpg", "failed", checks=None),
        record("train/B/10.jpg", checks=None),
    ]
    found = assess(records)
    assert (found.checked, found.unchecked) == (10, 1)
    assert [(g.where, g.kind, [i.source for i in g.images]) for g in found.duplicates] == [
        (ACROSS_SPLITS, "exact", ["test/A/1.jpg", "train/A/1.jpg"]),
        (ACROSS_CLASSES, "near", ["train/A/2.jpg", "train/B/2.jpg"]),
        (WITHIN_CLASS, "exact", ["valid/B/3.jpg", "valid/B/4.jpg"])]
    assert found.duplicates[0].splits == ("test", "train")
    assert [(i.distance, i.identical) for i in found.duplicates[1].images] == [(0, True), (0, False)]
    assert [f.source for f in found.blurry] == ["train/B/5.jpg", "train/A/8.jpg"]      # the worst first
    assert [f.source for f in found.dark] == ["train/A/6.jpg", "train/A/8.jpg"]
    assert [f.source for f in found.overexposed] == ["train/A/7.jpg"]
    assert found.blurry[0].measures["sharpness"] == 1.0
    # The same findings whatever the records' order.
    assert assess(list(reversed(records))) == found


def test_data_checks_round_trip_through_build_json_and_damage_is_named():
    from conftest import made_build_info

    found = assess([record("train/A/1.jpg", seed=1), record("test/A/1.jpg", seed=1),
                    record("train/A/2.jpg", seed=2, luma_p99=12)])
    info = made_build_info(["A"], data_checks=found)
    text = json.dumps(info.to_json())
    assert parse_build_info(text).data_checks == found
    assert parse_build_info(json.dumps(made_build_info(["A"]).to_json())).data_checks is None
    data = json.loads(text)
    data["data_checks"]["duplicates"][0]["where"] = "elsewhere"
    with pytest.raises(BuildInfoError, match="duplicates"):
        parse_build_info(json.dumps(data))
    data = json.loads(text)
    del data["data_checks"]["dark"][0]["luma_p99"]
    with pytest.raises(BuildInfoError, match="luma_p99"):
        parse_build_info(json.dumps(data))
    assert isinstance(DataChecks.from_json(json.loads(text)["data_checks"]), DataChecks)
