"""A build's own state under attack (issue 18, part 3): damaged state files,
runs killed with other options, readers during the final step, files that
are not what they seem, tampered state, sources replaced behind the tool's
back.  Each test reproduces one finding and runs the real tool; "the same as
a clean build" is always a byte-for-byte comparison."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from test_hardening import dataset_files, tool
from test_hostile import run_tool

from conftest import make_dataset, noisy, read_manifest, run_cli, skin_image, tree_digest, wait_until


def build(src: Path, dst: Path, *extra: str, expect: int | None = 0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=expect)


def same_as_clean_build(src: Path, dst: Path, clean: Path, *options: str) -> None:
    build(src, clean, *options)
    assert dataset_files(dst) == dataset_files(clean)


def run_info(dst: Path) -> dict:
    return json.loads((dst / "build.json").read_text())["run"]


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": noisy(skin_image(160, 120, seed_offset=i % 5), i)
                                           for i in range(8)})


# ------------------------------------------------------------ H3: damaged state files

def _cut_inside_e_acute(line: bytes) -> bytes:
    """The line cut short half-way through the UTF-8 bytes of its first "é"."""
    return line[:line.index("é".encode()) + 1]


@pytest.mark.parametrize("damage", ["journal", "pending", "manifest as Latin-1"])
def test_a_state_file_with_bytes_that_are_not_utf8_is_read_past(tmp_path, damage):
    src = make_dataset(tmp_path / "src", {f"train/A/caf\u00e9 {i}.png": skin_image(seed_offset=i) for i in range(3)})
    dst = tmp_path / "dst"
    build(src, dst)
    manifest = (dst / "manifest.jsonl").read_bytes()
    state = dst / ".skinseg"
    if damage == "manifest as Latin-1":
        (dst / "manifest.jsonl").write_bytes(manifest.decode("utf-8").encode("latin-1"))
    else:
        # A kill cut the last line short, inside a name's "é".
        line = manifest.splitlines(keepends=True)[1]
        if damage == "pending":
            line = json.dumps({"pending": "train/A/caf\u00e9 1.png", "outputs": []}, ensure_ascii=False).encode()
        (state / f"{damage}.jsonl").write_bytes(manifest.splitlines(keepends=True)[0] + _cut_inside_e_acute(line))
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    same_as_clean_build(src, dst, tmp_path / "clean")


def test_a_damaged_shard_file_is_read_past(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/caf\u00e9 {i}.png": skin_image(seed_offset=i) for i in range(6)})
    dst = tmp_path / "dst"
    build(src, dst, "--shard", "1/2")
    shard = dst / ".skinseg/shards/1-of-2.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    shard.write_bytes(b"".join(lines) + _cut_inside_e_acute(lines[-1]))
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--shard", "2/2")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    same_as_clean_build(src, dst, tmp_path / "clean")


# ------------------------------------------------------------ M1, M2: a run killed with other options

HELD = "A/002.png"      # the image whose files are written when the run is killed, before its record is journaled


def killed_after_writing(src: Path, dst: Path, written: Callable[[], bool], *options: str,
                         how: signal.Signals = signal.SIGKILL) -> None:
    """Run a build with `options` that holds HELD after writing its files;
    once `written()` says they are on disk, kill the whole build (SIGKILL:
    as an out-of-memory kill would) or press Ctrl-C (SIGINT: the images in
    flight finish, their records are dropped; the held one is stopped at its
    time limit)."""
    timeout = "3600" if how == signal.SIGKILL else "10"
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", "--image-timeout", timeout,
                                 *options),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, SKINSEG_TEST_FAULTS=f"hang_after_write:{HELD}"))
    try:
        wait_until(lambda: proc.poll() is not None or written(), "the held image's files")
        assert proc.poll() is None, "the build ended though one of its images is held"
        if how == signal.SIGINT:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
            assert proc.returncode == 130
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def changed(path: Path) -> Callable[[], bool]:
    before = path.read_bytes()
    return lambda: path.exists() and path.read_bytes() != before


@pytest.mark.parametrize("first, interrupted, last_file, how", [
    ((), ("--background", "original"), "images", signal.SIGKILL),                        # only re-renders
    ((), ("--background", "original"), "images", signal.SIGINT),
    (("--layout", "train-ready"), ("--layout", "original"), "masks_preview", signal.SIGKILL),    # the masks
    ((), ("--method", "rules"), "masks_preview", signal.SIGKILL),                        # every image again
])
def test_files_of_a_killed_run_are_not_trusted_by_the_previous_options(src, tmp_path, first, interrupted, last_file,
                                                                       how):
    """Issue 18 M1: build, a run with other options killed once an image's
    files are written (not journaled), then the first options again: the
    image's old record must not vouch for files the killed run replaced."""
    dst = tmp_path / "dst"
    build(src, dst, *first)
    held = dst / last_file / "train" / ("A__002.jpg" if last_file == "images" else "A__002.png")
    killed_after_writing(src, dst, changed(held), *first, *interrupted, how=how)
    build(src, dst, *first)
    same_as_clean_build(src, dst, tmp_path / "clean", *first)


def test_a_killed_layout_rerender_resumed_with_the_same_command(src, tmp_path):
    """Issue 18 M2: the old record's mask now holds a train-ready mask
    (255 on the edges): re-rendering from it would count the band as skin."""
    dst = tmp_path / "dst"
    build(src, dst)
    killed_after_writing(src, dst, lambda: (dst / ".skinseg/skin/train/A__002.png").exists(), "--layout", "train-ready")
    build(src, dst, "--layout", "train-ready")
    same_as_clean_build(src, dst, tmp_path / "clean", "--layout", "train-ready")


def test_a_kill_between_an_images_files_and_its_record_twice(src, tmp_path):
    """Killed runs pile up: with other options, then with the first ones
    again, then resumed with the other options."""
    dst = tmp_path / "dst"
    build(src, dst)
    killed_after_writing(src, dst, changed(dst / "images/train/A__002.jpg"), "--background", "original")
    killed_after_writing(src, dst, changed(dst / "images/train/A__002.jpg"))
    build(src, dst, "--background", "original")
    same_as_clean_build(src, dst, tmp_path / "clean", "--background", "original")


# ------------------------------------------------------------ M4, L3: the final step

def listed_files(dst: Path) -> list[str]:
    """Every file the manifest and the metadata files that a reader sees name."""
    names = []
    for listing in [dst / "manifest.jsonl", *dst.glob("metadata-*.jsonl")]:
        if listing.exists():
            for row in map(json.loads, listing.read_text().splitlines()):
                names += [row[k] for k in ("image", "mask", "preview", "skin_mask", "file_name", "mask_file_name",
                                           "skin_mask_file_name") if row.get(k)]
    return names


@pytest.mark.parametrize("change", [("--image-format", "png"), ("--sample", "3")])
@pytest.mark.parametrize("stop_at", ["metadata-train.jsonl", "build.json", "report.html", "manifest.jsonl"])
def test_every_listed_file_exists_whenever_the_final_step_stops(src, tmp_path, change, stop_at):
    """Issue 18 M4: the final step stopped (a full disk) after each file it
    writes: what the manifest and metadata files then list must exist."""
    dst = tmp_path / "dst"
    build(src, dst)
    stopped = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", *change,
                       env_extra={"SKINSEG_TEST_FAULTS": f"full:{stop_at}"})
    assert stopped.returncode == 1 and "No space left on device" in stopped.stderr, stopped.stderr
    listed = listed_files(dst)
    assert listed and all((dst / name).is_file() for name in listed), [n for n in listed if not (dst / n).is_file()]
    build(src, dst, *change)
    assert all((dst / name).is_file() for name in listed_files(dst))
    same_as_clean_build(src, dst, tmp_path / "clean", *change)


def test_a_full_disk_at_final_json_says_the_dataset_is_complete(src, tmp_path):
    """Issue 18 L3."""
    dst = tmp_path / "dst"
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face",
                      env_extra={"SKINSEG_TEST_FAULTS": "full:final.json"})
    assert result.returncode == 0, result.stderr
    assert "cannot write the dataset files" not in result.stderr
    assert "the dataset is complete" in result.stderr and "final.json" in result.stderr
    assert "8 written" in result.stdout
    build(src, dst)
    assert run_info(dst)["processed"] == 0 and run_info(dst)["workers"] == 1     # every record was checked
    same_as_clean_build(src, dst, tmp_path / "clean")
    build(src, dst)
    assert run_info(dst)["workers"] == 0                                          # the no-op shortcut is back


# ------------------------------------------------------------ L6: a named pipe in place of an output

@pytest.mark.parametrize("options", [(), ("--background", "original")])
def test_a_named_pipe_in_place_of_a_mask_is_replaced_not_waited_on(src, tmp_path, options):
    dst = tmp_path / "dst"
    build(src, dst)
    mask = dst / "masks/train/A__003.png"
    mask.unlink()
    os.mkfifo(mask)
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--image-timeout", "20", *options)
    assert result.returncode == 0, result.stderr + result.stdout
    assert mask.is_file() and not mask.is_fifo()
    same_as_clean_build(src, dst, tmp_path / "clean", *options)


# ------------------------------------------------------------ L7: tampered state

def test_a_pending_line_with_outputs_of_another_type_is_skipped(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst)
    (dst / ".skinseg/pending.jsonl").write_text('{"pending": "train/A/001.png", "outputs": 7}\n'
                                                '{"pending": "train/A/002.png", "outputs": [7, null]}\n')
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    same_as_clean_build(src, dst, tmp_path / "clean")


@pytest.mark.parametrize("name, shard", [("lock", ()), ("lock-0123456789abcdef", ("--shard", "1/2"))])
def test_a_folder_where_the_lock_goes_is_a_clear_usage_error(src, tmp_path, name, shard):
    dst = tmp_path / "dst"
    build(src, dst)
    lock = dst / ".skinseg" / name
    if lock.exists():
        lock.unlink()
    lock.mkdir()
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--kernel-size", "3", *shard)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{lock} is not a file" in result.stderr and "remove it" in result.stderr


# ------------------------------------------------------------ L8: a source replaced behind the tool's back

@pytest.mark.parametrize("options", [(), ("--background", "original")])
def test_a_source_replaced_with_the_same_size_and_time_is_processed_again(tmp_path, options):
    # BMP: the file's size is fixed by the image's, whatever its pixels.
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.bmp": skin_image(seed_offset=i) for i in range(3)})
    dst = tmp_path / "dst"
    build(src, dst)
    victim = src / "train/A/1.bmp"
    before = victim.stat()
    other = cv2.imencode(".bmp", skin_image(radius_fraction=0.2, seed_offset=-20))[1].tobytes()
    assert len(other) == before.st_size
    victim.write_bytes(other)                                   # in place: same inode
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert victim.stat().st_size == before.st_size and victim.stat().st_mtime_ns == before.st_mtime_ns
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *options, check_src=False)
    assert run_info(dst)["segmented"] == 1
    same_as_clean_build(src, dst, tmp_path / "clean", *options)


def test_an_unchanged_source_keeps_its_fingerprint(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst)
    first = [r["fingerprint"] for r in read_manifest(dst)]
    for path in src.rglob("*.png"):
        path.read_bytes()                      # reading changes the access time only
    build(src, dst, "--background", "original")
    build(src, dst)
    assert [r["fingerprint"] for r in read_manifest(dst)] == first
    assert run_info(dst)["segmented"] == 0


# ------------------------------------------------------------ L9, L10: what a re-run leaves

@pytest.fixture
def sampled_src(tmp_path):
    """More images per class than the report shows, large enough that its
    thumbnails are decoded at a reduced size."""
    return make_dataset(tmp_path / "src", {
        f"train/{c}/{i:02d}.jpg": skin_image(800, 600, radius_fraction=0.1 + 0.025 * i, seed_offset=i)
        for c in ("A", "B") for i in range(13)})


def test_thumbnails_after_a_source_removal_are_a_clean_builds(sampled_src, tmp_path):
    """Issue 18 L9: an image moves into the report's sample when a sampled one goes."""
    from skinseg.sampling import sample_key

    dst = tmp_path / "dst"
    build(sampled_src, dst)
    first = min((r["source"] for r in read_manifest(dst) if r["class_name"] == "A"), key=sample_key)
    (sampled_src / first).unlink()
    run_cli("--src", sampled_src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", check_src=False)
    same_as_clean_build(sampled_src, dst, tmp_path / "clean")


def test_thumbnails_after_a_layout_rerender_are_a_clean_builds(sampled_src, tmp_path):
    """Issue 18 L9: the thumbnails of the images the report shows as likely
    wrong are drawn by the report; the train-ready masks hide skin under
    their band, which must not reach the thumbnails."""
    dst = tmp_path / "dst"
    build(sampled_src, dst)
    build(sampled_src, dst, "--layout", "train-ready")
    same_as_clean_build(sampled_src, dst, tmp_path / "clean", "--layout", "train-ready")


def folders(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def test_output_folders_a_change_empties_are_removed(tmp_path):
    """Issue 18 L10: a split that is gone, a layout's own folders; only the
    tool's own folders, only when empty."""
    src = make_dataset(tmp_path / "src", {f"{split}/A/{i}.png": skin_image(seed_offset=i)
                                          for split in ("train", "valid") for i in range(2)})
    dst = tmp_path / "dst"
    build(src, dst, "--layout", "train-ready")
    (dst / "masks_preview/validation/notes.txt").write_text("mine")
    for path in (src / "valid/A").iterdir():
        path.unlink()
    (src / "valid/A").rmdir()
    (src / "valid").rmdir()
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", check_src=False)
    assert (dst / "masks_preview/validation/notes.txt").read_text() == "mine"
    (dst / "masks_preview/validation/notes.txt").unlink()
    build(src, tmp_path / "clean")
    assert folders(dst) == folders(tmp_path / "clean") | {"masks_preview/validation"}


# ------------------------------------------------------------ L13, L14: files and shards of others

@pytest.mark.parametrize("theirs", ["manifest.jsonl", "build.json", "classes.txt", "report.html",
                                    "metadata-train.jsonl"])
def test_overwrite_never_replaces_another_tools_dataset_files(src, tmp_path, theirs):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / theirs).write_text("another tool's\n")
    (dst / "README.md").write_text("# their dataset\n")
    before = tree_digest(dst)
    result = run_cli("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--overwrite", expect=2)
    assert f"holds {theirs}, which skinseg did not write" in result.output
    assert tree_digest(dst) == before


def test_shards_that_cannot_be_merged_are_refused_before_writing(tmp_path):
    """Issue 18 L14: shard 2 with other class ids than the finished shard 1."""
    src = make_dataset(tmp_path / "src", {f"train/{c}/{i}.png": skin_image(seed_offset=i)
                                          for c in ("A", "B") for i in range(6)})
    pinned = tmp_path / "classes.txt"
    pinned.write_text("background\nB\nA\n")
    dst = tmp_path / "dst"
    build(src, dst, "--shard", "1/2", "--classes", pinned)
    outputs = {p for p in dst.rglob("*") if ".skinseg" not in p.parts}
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--shard", "2/2")
    assert {p for p in dst.rglob("*") if ".skinseg" not in p.parts} == outputs       # nothing written
    assert result.returncode == 2, result.stderr
    assert "shard 1/2" in result.stderr and "other parameters" in result.stderr and "again" in result.stderr
    # Run again with the first shard's options, it finishes the build.
    build(src, dst, "--shard", "2/2", "--classes", pinned)
    same_as_clean_build(src, dst, tmp_path / "clean", "--classes", pinned)


def test_a_merge_refused_after_writing_says_the_images_are_kept(tmp_path, monkeypatch):
    """Where the shards of two builds can run at once (no file locks), a
    sibling may finish with other parameters while this shard runs: its
    images are kept and the message says so (exit 1, not a usage error)."""
    from skinseg import build as build_module

    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(seed_offset=i) for i in range(6)})
    dst = tmp_path / "dst"
    build(src, dst, "--shard", "1/2", "--kernel-size", "3")
    monkeypatch.setattr(build_module, "check_shards", lambda prepared: None)    # the sibling appears later
    result = build(src, dst, "--shard", "2/2", expect=1)
    assert "shard 2/2's images are written and kept" in result.output and "shard 1/2" in result.output
    assert not (dst / "manifest.jsonl").exists()



def test_the_last_write_of_a_path_decides_which_record_owns_it(tmp_path):
    """The journal and pending list order every write, also across runs
    and between images whose names moved onto each other."""
    from skinseg.journal import Journal, read_history
    from skinseg.records import Record

    def record(source: str, stem: str, fingerprint: str) -> Record:
        return Record(source, "train", "A", 1, "written", image=f"images/train/{stem}.jpg",
                      mask=f"masks/train/{stem}.png", preview=f"masks_preview/train/{stem}.png",
                      size=[10, 10], crop=[0, 0, 10, 10], fingerprint=fingerprint)

    state = tmp_path / ".skinseg"
    state.mkdir()
    old_t = record("t.png", "x", "0" * 16)           # the finished build's: t wrote x
    (tmp_path / "manifest.jsonl").write_text(json.dumps(old_t.to_dict()) + "\n")
    journal = Journal(tmp_path, None)                # a run where s's files are named x
    new_s = record("s.png", "x", "1" * 16)
    journal.starting("s.png", new_s.files())
    journal.finished(new_s)
    journal.starting("u.png", record("u.png", "y", "2" * 16).files())    # killed before u's record
    journal.close()
    history = read_history(tmp_path, manifest_ours=True)
    assert history.records["t.png"] == old_t and history.records["s.png"] == new_s
    assert not history.owns(old_t, "images/train/x.jpg")       # s overwrote it
    assert history.owns(new_s, "images/train/x.jpg")
    assert not history.owns(record("u.png", "y", "2" * 16), "masks/train/y.png")    # written, never recorded
    assert history.owns(old_t, "images/train/z.jpg")           # no run since touched it
    # The same paths from a shard's files: no order between the two runs.
    shard = Journal(tmp_path, (1, 2))
    shard.starting("s.png", new_s.files())
    shard.finished(new_s)
    shard.close()
    assert not read_history(tmp_path, manifest_ours=True).owns(new_s, "images/train/x.jpg")


@pytest.mark.parametrize("name", ["pending.jsonl", "journal.jsonl"])
def test_a_named_pipe_in_place_of_a_state_file_is_not_waited_on(src, tmp_path, name):
    dst = tmp_path / "dst"
    build(src, dst)
    os.mkfifo(dst / ".skinseg" / name)
    result = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--kernel-size", "3", timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{dst / '.skinseg' / name} is not a file (remove it)" in result.stderr
    (dst / ".skinseg" / name).unlink()
    build(src, dst, "--kernel-size", "3")
    same_as_clean_build(src, dst, tmp_path / "clean", "--kernel-size", "3")
