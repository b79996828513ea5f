"""colour_model's bins and histogram smoothing against their definitions
(both were rewritten for speed; every stage's colour lookups depend on them)."""

import numpy as np

from skinseg import colour_model


def test_bin_index_is_y_cr_cb_bins_packed():
    """Every (Y, Cr, Cb) value lands in bin (Y >> 4) * 4096 + (Cr >> 2) * 64 + (Cb >> 2)."""
    y, cr, cb = np.meshgrid(np.arange(256), np.arange(256), np.arange(0, 256, 5), indexing="ij")
    ycc = np.stack([y, cr, cb], axis=-1).reshape(256, -1, 3).astype(np.uint8)
    bins = colour_model.bin_index(ycc)
    y, cr, cb = (ycc[..., c].astype(np.int64) for c in range(3))
    expected = (y >> 4) * 4096 + (cr >> 2) * 64 + (cb >> 2)
    assert bins.shape == ycc.shape[:2] and bins.dtype == np.uint16
    assert np.array_equal(bins, expected)
    assert bins.max() < colour_model.BIN_COUNT


def test_nonskin_density_is_a_3x3x3_box_sum_of_the_histogram():
    """The smoothed density equals the sum over each bin's 27 neighbours
    (zero beyond the edges), brute force, for counts at the corners too."""
    rng = np.random.default_rng(3)
    bins = rng.integers(0, colour_model.BIN_COUNT, (60, 70)).astype(np.uint16)
    bins[0, :3] = [0, colour_model.BIN_COUNT - 1, 4095]           # corners and an edge of the cube
    marked = rng.random(bins.shape) < 0.6
    marked[0, :3] = True
    density = colour_model.nonskin_density(bins, marked)
    hist = np.bincount(bins[marked], minlength=colour_model.BIN_COUNT).reshape(
        colour_model.Y_BINS, colour_model.C_BINS, colour_model.C_BINS).astype(np.float64)
    padded = np.pad(hist, 1)
    box = sum(padded[1 + dy:1 + dy + hist.shape[0], 1 + dr:1 + dr + hist.shape[1], 1 + db:1 + db + hist.shape[2]]
              for dy in (-1, 0, 1) for dr in (-1, 0, 1) for db in (-1, 0, 1))
    expected = box.ravel() / (27.0 * np.count_nonzero(marked) * colour_model._BIN_VOLUME)
    assert np.allclose(density, expected, rtol=1e-6, atol=0)
    assert density[0] > 0 and density[colour_model.BIN_COUNT - 1] > 0


def test_occupied_bins_are_the_distinct_bins_in_order():
    """Every bin that holds a pixel, each once, ascending (also on a strided view, with the corners)."""
    rng = np.random.default_rng(5)
    bins = (rng.integers(0, 700, (90, 110)) * 93).astype(np.uint16)
    bins[0, :2] = [0, colour_model.BIN_COUNT - 1]
    view = bins[::2, ::2]
    occupied = colour_model.occupied_bins(view)
    assert np.array_equal(occupied, np.unique(view))
    assert occupied.dtype == np.int64


def test_sample_pixels_are_the_pixels_fit_uses():
    """sample_pixels(view, where) is view[where] thinned exactly as fit() thins
    it, so fitting either gives the same model, bit for bit: for fewer and for
    more pixels than fit() keeps, on every 2nd row and column of an image."""
    rng = np.random.default_rng(7)
    ycc = rng.integers(0, 256, (181, 243, 3), dtype=np.uint8)
    view = ycc[colour_model.EVERY_2ND]
    for share in (0.01, 0.3, 1.0):
        where = rng.random(view.shape[:2]) < share
        everything = view[where]
        sample = colour_model.sample_pixels(view, where)
        assert len(sample) == min(len(everything), colour_model.MAX_SAMPLES)
        if len(everything) > colour_model.MAX_SAMPLES:
            kept = np.linspace(0, len(everything) - 1, colour_model.MAX_SAMPLES).astype(np.int64)
            assert np.array_equal(sample, everything[kept])
        else:
            assert np.array_equal(sample, everything)
        a, b = colour_model.fit(sample, 1.5, 3.0, 1.2), colour_model.fit(everything, 1.5, 3.0, 1.2)
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.chroma_cov, b.chroma_cov)
        assert (a.y_sd, a.y_sd_below) == (b.y_sd, b.y_sd_below)
