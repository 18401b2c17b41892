"""Write each recipe's dvc.yaml from its shared pipeline definition in recipes/pipelines/ (``--check``: verify only).

DVC reads ``dvc.yaml`` from git revisions for ``dvc exp show``, ``metrics diff`` and ``plots diff``, and there a
symlink is just its target's path, so the recipes carry generated files. Edit ``recipes/pipelines/*.yaml``, then
run ``python scripts/sync_recipes.py``; ``tests/test_crossval.py`` fails while a recipe's file is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# recipe -> pipeline
PIPELINES = {"esc50": "crossval", "urbansound8k": "crossval", "attributes": "tracks", "rudiments": "tracks"}


def generated(pipeline: str) -> str:
    """The text of a recipe's dvc.yaml: a do-not-edit header, then the shared definition verbatim."""
    source = (REPO / "recipes" / "pipelines" / f"{pipeline}.yaml").read_text(encoding="utf-8")
    return (f"# GENERATED from ../pipelines/{pipeline}.yaml by scripts/sync_recipes.py: edit that file, not this one.\n"
            + source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a recipe's dvc.yaml is out of date")
    args = parser.parse_args(argv)
    stale = []
    for recipe, pipeline in PIPELINES.items():
        path = REPO / "recipes" / recipe / "dvc.yaml"
        text = generated(pipeline)
        current = path.read_text(encoding="utf-8") if path.is_file() and not path.is_symlink() else None
        if current != text:
            stale.append(recipe)
            if not args.check:
                path.unlink(missing_ok=True)
                path.write_text(text, encoding="utf-8")
    if stale:
        print(("out of date: " if args.check else "wrote: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
