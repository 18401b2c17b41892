"""The standard event metadata schema and its validation.

Every data source (synthetic, plain CSV, dataset adapters) produces this table; a problem is
reported with the file, the CSV line numbers and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = (
    "note_id", "audio_path", "onset_sec", "offset_sec", "pitch_midi", "expression_style", "label_category", "group",
)
MAX_LISTED = 10


class MetadataError(ValueError):
    """Metadata that breaks the schema; the message names the file, rows and fix."""


def _lines(index: pd.Index) -> str:
    """CSV line numbers (header is line 1) for a set of row positions."""
    lines = [str(i + 2) for i in index[:MAX_LISTED]]
    more = f" and {len(index) - MAX_LISTED} more" if len(index) > MAX_LISTED else ""
    return ", ".join(lines) + more


def read_metadata(path: str | Path) -> pd.DataFrame:
    """Read a metadata CSV as text-safe columns (ids and paths stay strings)."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: metadata file not found")
    try:
        return pd.read_csv(path, dtype={"note_id": str, "track_id": str, "audio_path": str, "group": str},
                           keep_default_na=False,
                           encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{path}: not UTF-8 ({exc}); re-save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MetadataError(f"{path}: cannot parse CSV ({exc})") from None


class AudioRoot:
    """Resolves audio paths against ``root``, refusing any that escape it (``..``, absolute paths, symlinks).

    Each directory is resolved once and cached; a file then costs one ``lstat`` (to catch a symlinked
    file) instead of a full ``Path.resolve()`` per row, which had cost featurize about a tenth of its time.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.real = self.root.resolve()
        self._real = str(self.real)
        self._inside = os.path.join(self._real, "")  # "<real root>/": a prefix only paths inside it have
        self._dirs: dict[str, str] = {}

    def resolve(self, audio_path: str) -> Path | None:
        """The audio file's real path, or None when it (or a symlink on the way) escapes the root."""
        real = self.real_path(audio_path)
        return None if real is None else Path(real)

    def real_path(self, audio_path: str) -> str | None:
        """:meth:`resolve` as a string: building Path objects cost featurize more than the lookups."""
        head, _, name = str(audio_path).rpartition("/")
        if name in ("", ".", "..") or os.path.isabs(audio_path):
            real = os.path.realpath(os.path.join(self.root, audio_path))
        else:
            folder = self._dirs.get(head)
            if folder is None:
                folder = self._dirs[head] = os.path.realpath(os.path.join(self.root, head))
            real = os.path.join(folder, name)
            if os.path.islink(real):
                real = os.path.realpath(real)
        return real if real.startswith(self._inside) or real == self._real else None


def validate_metadata(
    df: pd.DataFrame, classes: list[str], root: str | Path, source: str = "metadata", check_files: bool = True
) -> pd.DataFrame:
    """Check the schema, labels, ids, times and audio paths; return a cleaned copy.

    Raises :class:`MetadataError` on the first kind of problem found, listing every row of it.
    """
    root = Path(root)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise MetadataError(f"{source}: missing columns {missing}; the schema is {list(REQUIRED_COLUMNS)}")
    if df.empty:
        raise MetadataError(f"{source}: holds no events")
    df = df.reset_index(drop=True).copy()
    for col in ("note_id", "audio_path", "group", "label_category", "expression_style"):
        df[col] = df[col].astype(str)

    bad = df.index[~df["label_category"].isin(classes)]
    if len(bad):
        found = sorted(set(df.loc[bad, "label_category"]))
        raise MetadataError(
            f"{source}: unknown label(s) {found} on line(s) {_lines(bad)}; allowed labels are {classes} "
            "(fix the rows or data.classes)"
        )
    dup = df.index[df["note_id"].duplicated(keep=False)]
    if len(dup):
        ids = sorted(set(df.loc[dup, "note_id"]))[:MAX_LISTED]
        raise MetadataError(f"{source}: duplicate note_id(s) {ids} on lines {_lines(dup)}; note_id must be unique")
    empty = df.index[(df["note_id"].str.strip() == "") | (df["audio_path"].str.strip() == "")]
    if len(empty):
        raise MetadataError(f"{source}: empty note_id or audio_path on line(s) {_lines(empty)}")

    for col in ("onset_sec", "offset_sec", "pitch_midi"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df.index[values.isna() | ~values.abs().lt(float("inf"))]
        if len(bad):
            raise MetadataError(f"{source}: non-numeric {col} on line(s) {_lines(bad)}")
        df[col] = values.astype(float)
    bad = df.index[df["onset_sec"] < 0]
    if len(bad):
        raise MetadataError(f"{source}: negative onset_sec on line(s) {_lines(bad)}; onsets count from 0 s")
    bad = df.index[df["offset_sec"] < df["onset_sec"]]
    if len(bad):
        raise MetadataError(f"{source}: offset_sec before onset_sec on line(s) {_lines(bad)}; swap or fix the times")

    if check_files:
        _check_audio_files(df, root, source)
    return df


def _check_audio_files(df: pd.DataFrame, root: str | Path, source: str) -> None:
    """Every ``audio_path`` resolves inside ``root`` and is a file."""
    audio_root = AudioRoot(root)
    resolved = df["audio_path"].map(audio_root.resolve)
    bad = df.index[resolved.isna()]
    if len(bad):
        raise MetadataError(
            f"{source}: audio_path escapes the audio root {root} on line(s) {_lines(bad)} "
            f"(e.g. {df.loc[bad[0], 'audio_path']!r}); keep audio files inside data.root"
        )
    bad = df.index[~resolved.map(lambda p: p.is_file())]
    if len(bad):
        raise MetadataError(
            f"{source}: audio file(s) missing under {root} on line(s) {_lines(bad)} "
            f"(e.g. {df.loc[bad[0], 'audio_path']!r})"
        )


TRACK_COLUMNS = ("track_id", "audio_path", "group")


def validate_tracks(df: pd.DataFrame, root: str | Path, source: str = "metadata",
                    check_files: bool = True) -> pd.DataFrame:
    """Check a whole-track table (``track_id``, ``audio_path``, ``group`` and target columns); return a copy.

    Target values are checked against ``task.targets`` when the targets are encoded
    (:func:`fretlab.tasks.targets.encode_targets`), which names the file, line and column of a bad cell.
    """
    missing = [c for c in TRACK_COLUMNS if c not in df.columns]
    if missing:
        raise MetadataError(f"{source}: missing columns {missing}; a track table needs {list(TRACK_COLUMNS)} "
                            "plus one column per target")
    if df.empty:
        raise MetadataError(f"{source}: holds no tracks")
    df = df.reset_index(drop=True).copy()
    for col in TRACK_COLUMNS:
        df[col] = df[col].astype(str)
    empty = df.index[(df["track_id"].str.strip() == "") | (df["audio_path"].str.strip() == "")
                     | (df["group"].str.strip() == "")]
    if len(empty):
        raise MetadataError(f"{source}: empty track_id, audio_path or group on line(s) {_lines(empty)}")
    dup = df.index[df["track_id"].duplicated(keep=False)]
    if len(dup):
        ids = sorted(set(df.loc[dup, "track_id"]))[:MAX_LISTED]
        raise MetadataError(f"{source}: duplicate track_id(s) {ids} on lines {_lines(dup)}; track_id must be unique")
    if check_files:
        _check_audio_files(df, root, source)
    return df
