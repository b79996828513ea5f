"""Regenerate the README's demo images with the tool itself.

    python demo_images/regenerate.py

Builds the bundled example dataset into a temporary folder with the default
options and copies the outputs of one image here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = "train/Normal Skin/1.jpg"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "dataset"
        subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src",
                        str(REPO / "examples" / "dataset_original"), "--dst", str(dst), "--quiet"], check=True)
        record = next(r for r in map(json.loads, (dst / "manifest.jsonl").read_text().splitlines())
                      if r["source"] == SOURCE)
        shutil.copy(REPO / "examples" / "dataset_original" / SOURCE, HERE / "original.jpg")
        shutil.copy(dst / record["image"], HERE / "skin_only.jpg")
        shutil.copy(dst / record["mask"], HERE / "training_mask.png")
        shutil.copy(dst / record["preview"], HERE / "preview.png")
        print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
