"""Several machines, one build: --shard K/N.

Shard k of n does the images whose source path hashes to k-1 modulo n.
The shards of one build agree on what they build (`Prepared.identity`:
parameters and models, class ids, the image list); a shard whose finished
siblings built something else is refused before it writes anything.  Each
finished shard saves its records in ``.skinseg/shards/``; the last one to
finish merges them and writes the dataset files for all.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from typing import Optional

from .atomic import write_lines
from .errors import BuildAborted, BuildError
from .journal import shard_header
from .layout import shard_records
from .names import json_text, name_bytes
from .plan import Prepared
from .records import Record, read_records, record_line

log = logging.getLogger("skinseg")


def in_shard(source: str, shard: Optional[tuple[int, int]]) -> bool:
    """Shard k of n owns the sources whose hash is k-1 modulo n: a fixed
    split that does not move when images are added elsewhere."""
    if shard is None:
        return True
    index, count = shard
    return int(hashlib.sha1(name_bytes(source)).hexdigest()[:12], 16) % count == index - 1


def lock_group(prepared: Prepared) -> Optional[str]:
    """What the shards of one build hold a shared lock on (None: not sharded)."""
    if prepared.config.shard is None:
        return None
    return hashlib.sha256(json_text([prepared.config.shard[1], prepared.identity()]).encode()).hexdigest()[:16]


def disagreement(prepared: Prepared, index: int, count: int) -> Optional[str]:
    """Why shard `index` of `count`, finished in dst, cannot be merged with
    this build (None if it can, or has not finished)."""
    header = shard_header(prepared.config.dst / shard_records(index, count))
    if header is None or all(header.get(key) == value for key, value in prepared.identity().items()):
        return None
    return (f"shard {index}/{count} in {prepared.config.dst} was built with other parameters, class ids (--classes) "
            "or source images; run every shard with the same options and --src (running shard "
            f"{index}/{count} again with these options replaces its results)")


def check_shards(prepared: Prepared) -> None:
    """Refuse a shard, before it writes anything, whose finished siblings
    built something else: the results could never be merged."""
    assert prepared.config.shard is not None
    index, count = prepared.config.shard
    for k in range(1, count + 1):
        why = disagreement(prepared, k, count) if k != index else None
        if why:
            raise BuildError(why)


def finish_shard(prepared: Prepared, records: list[Record]) -> Optional[list[Record]]:
    """Save this shard's records; if every shard is done, return all records
    (this shard then writes the dataset files), else None.  Siblings that
    cannot be merged raise BuildAborted (this shard's images are kept)."""
    config, tasks = prepared.config, prepared.tasks
    assert config.shard is not None
    index, count = config.shard
    header = json_text({"shard": index, "of": count, **prepared.identity()}) + "\n"
    write_lines(config.dst / shard_records(index, count),
                itertools.chain([header], (record_line(r) for r in records)))
    kept = (f"shard {index}/{count}'s images are written and kept (running it again reuses them), "
            "but the shards cannot be merged: ")
    merged: dict[str, Record] = {}
    for k in range(1, count + 1):
        path = config.dst / shard_records(k, count)
        if shard_header(path) is None:
            if path.exists():
                log.warning("the results of shard %d/%d in %s are damaged: run shard %d/%d again", k, count,
                            config.dst, k, count)
            return None     # not finished yet (or another shard has just merged everything)
        why = disagreement(prepared, k, count)
        if why:             # it finished while this one ran (where builds cannot lock the destination)
            raise BuildAborted(kept + why)
        merged.update((record.source, record) for record in read_records(path))
    missing = [t.source for t in tasks if t.source not in merged]
    if missing:
        raise BuildAborted(kept + f"the shards do not cover {len(missing)} images (e.g. {missing[0]}); "
                           "were they run with different --src contents?")
    return [merged[t.source] for t in tasks]
