"""Stage card: the evaluated model card, the train stage's card with the synthetic test and check-set figures.

Writes paths.model_card from the model directory's model_card.md, metrics/test.json and the check-set metrics:
the figures are the ones `dvc metrics show` prints for the same dvc.lock.
"""

import argparse
from pathlib import Path

from fretlab.artifacts.modelcard import CARD, evaluated_card
from fretlab.artifacts.modeldir import CONFIG
from fretlab.io import atomic_path, read_json
from fretlab.params import load_params
from fretlab.tasks.checkset import METRICS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    paths = load_params(args.params).paths
    model = Path(paths.model)
    test_file = Path(paths.metrics) / "test.json"
    checkset_file = Path(paths.checkset_report) / METRICS_FILE
    classes = read_json(model / CONFIG)["classes"]
    card = evaluated_card((model / CARD).read_text(encoding="utf-8"), read_json(test_file), read_json(checkset_file),
                          classes, (test_file.as_posix(), checkset_file.as_posix()))
    out = Path(paths.model_card)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(card, encoding="utf-8")
    print(f"evaluated model card: {out}")


if __name__ == "__main__":
    main()
