"""Dataset catalogs: turn a data path (``data.path``) into a :class:`VideoCatalog`, the list of
:class:`VideoRecord` s with their class names.

Recognised layouts (detected in this order):

* **UCF-101**: a video root ``<Class>/<video>.avi`` with ``classInd.txt``, ``trainlist0N.txt`` and
  ``testlist0N.txt`` in the root, in ``ucfTrainTestlist/`` or in ``splits_dir``; ``split`` picks N.
* **HMDB-51**: a video root ``<class>/<video>.avi`` with ``<class>_test_split<N>.txt`` files
  (``video.avi 1`` = train, ``2`` = test, ``0`` = unused) in the root, in ``testTrainMulti_7030_splits/``
  or in ``splits_dir``.
* **Kinetics-400/700 CSV** (``label,youtube_id,time_start,time_end,split``): clips named
  ``<id>_<start:06d>_<end:06d>.mp4`` looked up beside the CSV, under ``<label>/`` or ``<split>/<label>/``.
* **ActivityNet JSON** as used by 3D-ResNets-PyTorch (``labels``, ``database[vid] = {subset,
  annotations: [{label, segment}]}``): one record per annotated segment, video ``v_<vid>.mp4``
  or ``<vid>.mp4`` (any video extension) beside the JSON.
* **CSV manifest** with columns ``path,label`` and optional ``group``, ``dataset`` (paths relative to
  the CSV); ``dataset`` selects rows.
* **Class folders** ``root/<class>/<video>`` (an exported VPN folder is one).

Each layout is a :class:`DatasetFormat` (detect + load) in :data:`FORMATS`; a new layout is one loader
registered with :func:`register_format`, and the ``data.path`` doc and the refusal of an unknown path
list it from there.

Subsets are normalised to ``train`` and ``val`` (UCF/HMDB "test" lists are the evaluation split).

**Partial copies.** Layouts with official annotation files (UCF-101, HMDB-51, Kinetics, ActivityNet)
list far more videos than a user usually has: a partial download, or JHMDB (21 HMDB-51 classes). A
catalog keeps the listed videos that are on disk and the classes that have any, in the official
class order; label indices are assigned once, here, so training and test splits of one catalog
always agree (another catalog is matched by class *name*, :func:`videoperlin.data.splits.relabel`).
One log line says what was kept: classes present, clips listed but missing, clips on disk that the
split files do not list.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from videoperlin.data.decode import VIDEO_EXTENSIONS
from videoperlin.errors import DataError, quoted
from videoperlin.utils.text import read_csv_rows, read_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video (or segment of a video)."""

    path: Path
    label: int
    group: str | None = None
    subset: str | None = None  # "train", "val" or None (no predefined split)
    segment: tuple[float, float] | None = None  # seconds, for ActivityNet annotations


@dataclass
class VideoCatalog:
    """The labelled videos of one data path: records, class names and the layout they came from."""

    records: list[VideoRecord]
    class_names: list[str]
    kind: str
    missing: list[str] = field(default_factory=list)  # listed videos not found on disk
    listed_classes: int = 0  # classes the annotation files name (0: the layout has no such list)
    unlisted: int = 0  # videos in the class folders that the annotation files do not list

    def subset(self, name: str) -> list[VideoRecord]:
        return [r for r in self.records if r.subset == name]

    def summary(self) -> str:
        """One line: what was kept of the annotation files (empty when nothing is missing)."""
        if not (self.missing or self.unlisted or self.listed_classes > len(self.class_names)):
            return ""
        listed = len(self.records) + len(self.missing)
        return (
            f"{self.kind}: {len(self.class_names)} of {self.listed_classes or len(self.class_names)} classes present, "
            f"{len(self.records)} of {listed} listed clips on disk ({len(self.missing)} listed but missing"
            + (f", {self.unlisted} on disk but not listed" if self.unlisted else "")
            + ")"
        )


def keep_present(
    records: list[VideoRecord], class_names: list[str], kind: str, where: Path, unlisted: int = 0
) -> VideoCatalog:
    """The catalog of the listed ``records`` that are on disk, over the classes that have any (official order)."""
    present = [r for r in records if r.path.is_file()]
    if not present:
        raise DataError(
            f"{where}: none of the {len(records)} videos listed by the {kind} annotations is on disk; "
            f"check --data (the videos' root) and --splits-dir / --split"
        )
    kept = sorted({r.label for r in present})
    index = {old: new for new, old in enumerate(kept)}
    catalog = VideoCatalog(
        [dataclasses.replace(r, label=index[r.label]) for r in present],
        [class_names[k] for k in kept],
        kind,
        [str(r.path) for r in records if not r.path.is_file()],
        len(class_names),
        unlisted,
    )
    if catalog.summary():
        log.info("%s", catalog.summary())
    return catalog


def _find_file(root: Path, names: list[str], splits_dir: Path | None) -> Path | None:
    for folder in [splits_dir, root, *[p for p in root.iterdir() if p.is_dir()]] if root.is_dir() else []:
        if folder is None:
            continue
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _videos_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
    )


def load_class_folders(root: Path) -> VideoCatalog:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    records = [VideoRecord(video, k) for k, name in enumerate(classes) for video in _videos_in(root / name)]
    if not records:
        raise DataError(
            f"--data {root}: no videos found in <class>/<video> folders (extensions {', '.join(VIDEO_EXTENSIONS)})"
        )
    return VideoCatalog(records, classes, "folders")


def _manifest_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a manifest, each checked: as many fields as the header, a path and a label, no path
    twice (a duplicate could land on both sides of a split), and no label spelt two ways within a
    dataset (``walk``/``Walk`` would be two classes of one action). Fields are stripped of surrounding
    spaces. Errors name the file and line."""
    reader = csv.reader(io.StringIO(read_text(path, "manifest"), newline=""))
    header = [name.strip() for name in next(reader, [])]
    rows = [(reader.line_num, values) for values in reader if any(v.strip() for v in values)]
    if not {"path", "label"} <= set(header):
        raise DataError(f"{path}: a manifest needs a header with at least 'path,label' columns")
    seen: dict[tuple[str, str], int] = {}
    spellings: dict[tuple[str, str], tuple[str, int]] = {}
    checked = []
    for line, values in rows:
        if len(values) != len(header):
            raise DataError(f"{path}:{line}: {len(values)} fields where the header has {len(header)}")
        row = {name: value.strip() for name, value in zip(header, values)}
        checked.append(row)
        first, first_line = spellings.setdefault(
            (row.get("dataset", ""), row["label"].casefold()), (row["label"], line)
        )
        if row["label"] != first:
            raise DataError(
                f"{path}:{line}: label {quoted(row['label'])} differs from {quoted(first)} (line {first_line}) "
                f"only in case; spell each class one way"
            )
        for column in ("path", "label"):
            if not row[column]:
                raise DataError(f"{path}:{line}: empty {column}")
        key = (row.get("dataset", ""), row["path"])
        if key in seen:
            raise DataError(
                f"{path}:{line}: {row['path']} is listed again (first on line {seen[key]}); a duplicate "
                f"could put the same video on both sides of a split"
            )
        seen[key] = line
    return checked


def load_csv_manifest(path: Path, dataset: str | None) -> VideoCatalog:
    rows = _manifest_rows(path)
    if not rows:
        raise DataError(f"{path}: the manifest has no rows")
    if dataset is not None:
        available = sorted({r.get("dataset") or "" for r in rows})
        rows = [r for r in rows if r.get("dataset") == dataset]
        if not rows:
            raise DataError(f"{path}: no rows with dataset={dataset!r}; available: {', '.join(available)}")
    classes = sorted({r["label"] for r in rows})
    index = {name: k for k, name in enumerate(classes)}
    records = [VideoRecord(path.parent / r["path"], index[r["label"]], r.get("group") or None) for r in rows]
    return VideoCatalog(records, classes, "csv")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(read_text(path, "split file").splitlines(), 1) if line.strip()]


def _class_index(path: Path) -> list[str]:
    """UCF-101 ``classInd.txt``: ``<number> <ClassName>`` per line, numbered from 1 in order."""
    classes = []
    for number, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<number> <ClassName>', got {line!r}")
        classes.append(parts[1])
    return classes


def load_ucf101(root: Path, split: int, splits_dir: Path | None) -> VideoCatalog:
    class_ind = _find_file(root, ["classInd.txt"], splits_dir)
    lists = {s: _find_file(root, [f"{s}list0{split}.txt"], splits_dir) for s in ("train", "test")}
    for name, found in lists.items():
        if found is None:
            raise DataError(
                f"UCF-101 split file {name}list0{split}.txt not found in {splits_dir or root} "
                f"(or ucfTrainTestlist/); check --split or --splits-dir"
            )
    classes = _class_index(class_ind)  # type: ignore[arg-type]
    index = {name: k for k, name in enumerate(classes)}
    records = []
    for subset, list_path in lists.items():
        for number, line in _read_lines(list_path):  # type: ignore[arg-type]
            relative = line.split()[0]
            label_name = relative.split("/")[0]
            if label_name not in index:
                raise DataError(
                    f"{list_path}:{number}: class {label_name!r} is not in {class_ind}; fix the typo or add the class"
                )
            records.append(
                VideoRecord(root / relative, index[label_name], subset="train" if subset == "train" else "val")
            )
    return keep_present(records, classes, "ucf101", root, _unlisted(root, records))


def _unlisted(root: Path, records: list[VideoRecord]) -> int:
    """Videos in the class folders of ``records`` that no record names."""
    listed = {r.path for r in records}
    folders = {r.path.parent for r in records if r.path.parent.is_dir()}
    return sum(1 for folder in folders for video in _videos_in(folder) if video not in listed)


def load_hmdb51(root: Path, split: int, splits_dir: Path | None) -> VideoCatalog:
    folders = [f for f in (splits_dir, root, root / "testTrainMulti_7030_splits") if f and f.is_dir()]
    files = sorted({p for f in folders for p in f.glob(f"*_test_split{split}.txt")})
    if not files:
        raise DataError(
            f"HMDB-51 split files *_test_split{split}.txt not found in {splits_dir or root}; "
            f"check --split or --splits-dir"
        )
    # Class name from each file's own name: sorting names and files separately misaligns prefixes
    # ("climb" < "climb_stairs", but "climb_stairs_test..." < "climb_test...").
    by_class = sorted((f.name[: -len(f"_test_split{split}.txt")], f) for f in files)
    classes = [name for name, _ in by_class]
    records, listed = [], []
    for k, (name, split_file) in enumerate(by_class):
        for number, line in _read_lines(split_file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{split_file}:{number}: expected '<video> <0|1|2>', got {line!r}")
            listed.append(VideoRecord(root / name / parts[0], k))  # unused (0) videos are listed, not unlisted
            if parts[1] != "0":
                records.append(VideoRecord(root / name / parts[0], k, subset="train" if parts[1] == "1" else "val"))
    return keep_present(records, classes, "hmdb51", root, _unlisted(root, listed))


def load_kinetics_csv(path: Path) -> VideoCatalog:
    rows = read_csv_rows(path, "Kinetics CSV")
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise DataError(f"{path}: a Kinetics CSV needs the columns {', '.join(sorted(needed))}[, split]")
    classes = sorted({r["label"] for r in rows})
    index = {name: k for k, name in enumerate(classes)}
    subsets = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
    records = []
    for r in rows:
        name = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        split = r.get("split", "")
        candidates = [path.parent / r["label"] / name, path.parent / split / r["label"] / name, path.parent / name]
        found = next((c for c in candidates if c.exists()), candidates[0])
        records.append(VideoRecord(found, index[r["label"]], subset=subsets.get(split)))
    return keep_present(records, classes, "kinetics", path)


def load_activitynet_json(path: Path) -> VideoCatalog:
    try:
        spec = json.loads(read_text(path, "ActivityNet JSON"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict) or "database" not in spec:
        raise DataError(f"{path}: an ActivityNet JSON needs a 'database' mapping")
    database = spec["database"]
    classes = list(
        spec.get("labels") or sorted({a["label"] for v in database.values() for a in v.get("annotations", [])})
    )
    index = {name: k for k, name in enumerate(classes)}
    subsets = {"training": "train", "validation": "val", "testing": "test"}
    by_stem = {p.stem: p for p in path.parent.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
    records = []
    for vid, entry in database.items():
        video = by_stem.get(f"v_{vid}") or by_stem.get(vid) or path.parent / f"v_{vid}.mp4"
        for annotation in entry.get("annotations", []):
            if annotation["label"] not in index:
                raise DataError(f"{path}: video {vid} has label {annotation['label']!r} not in 'labels'")
            start, end = annotation["segment"]
            records.append(
                VideoRecord(
                    video,
                    index[annotation["label"]],
                    subset=subsets.get(entry.get("subset")),
                    segment=(float(start), float(end)),
                )
            )
    return keep_present(records, classes, "activitynet", path)


# ---- formats: a registry, so that a new layout is one loader ------------------------------------


@dataclass(frozen=True)
class CatalogRequest:
    """What a loader is asked for: the data path and the options that pick its records."""

    root: Path
    dataset: str | None = None
    split: int = 1
    splits_dir: Path | None = None


@dataclass(frozen=True)
class DatasetFormat:
    """A layout of video data: its name, what it looks like (one phrase, for docs and errors), whether a
    path is one (``detect``, cheap: names and headers, no video is opened) and its loader."""

    name: str
    looks_like: str
    detect: Callable[[CatalogRequest], bool]
    load: Callable[[CatalogRequest], VideoCatalog]


#: The formats in detection order: the first whose ``detect`` says yes loads (class folders come last).
FORMATS: list[DatasetFormat] = []


def register_format(fmt: DatasetFormat, before: str | None = None) -> DatasetFormat:
    """Add ``fmt`` to :data:`FORMATS` (before the format named ``before``, else before class folders, the
    catch-all); a name is registered once."""
    if any(f.name == fmt.name for f in FORMATS):
        raise ValueError(f"dataset format {fmt.name!r} is already registered")
    names = [f.name for f in FORMATS]
    anchor = before if before in names else "folders" if "folders" in names else None
    FORMATS.insert(names.index(anchor) if anchor else len(FORMATS), fmt)
    return fmt


def format_names() -> str:
    """Every layout, in words: what the ``data.path`` field's doc and a refusal list."""
    return ", ".join(f.looks_like for f in FORMATS)


def _csv_header(request: CatalogRequest) -> str:
    return read_text(request.root, "manifest").partition("\n")[0]


def _is_file(suffix: str) -> Callable[[CatalogRequest], bool]:
    return lambda r: r.root.is_file() and r.root.suffix.lower() == suffix


def _has_hmdb_splits(r: CatalogRequest) -> bool:
    folders = [f for f in (r.splits_dir, r.root, r.root / "testTrainMulti_7030_splits") if f and f.is_dir()]
    return r.root.is_dir() and any(next(f.glob("*_test_split*.txt"), None) for f in folders)


register_format(
    DatasetFormat(
        "ucf101",
        "a UCF-101 root (classInd.txt, split lists)",
        lambda r: r.root.is_dir() and _find_file(r.root, ["classInd.txt"], r.splits_dir) is not None,
        lambda r: load_ucf101(r.root, r.split, r.splits_dir),
    )
)
register_format(
    DatasetFormat(
        "hmdb51",
        "an HMDB-51 root (<class>_test_split<N>.txt)",
        _has_hmdb_splits,
        lambda r: load_hmdb51(r.root, r.split, r.splits_dir),
    )
)
register_format(
    DatasetFormat(
        "kinetics",
        "a Kinetics CSV (label,youtube_id,...)",
        lambda r: _is_file(".csv")(r) and "youtube_id" in _csv_header(r),
        lambda r: load_kinetics_csv(r.root),
    )
)
register_format(
    DatasetFormat("activitynet", "an ActivityNet JSON", _is_file(".json"), lambda r: load_activitynet_json(r.root))
)
register_format(
    DatasetFormat(
        "csv",
        "a CSV manifest (path,label[,group,dataset])",
        _is_file(".csv"),
        lambda r: load_csv_manifest(r.root, r.dataset),
    )
)
register_format(
    DatasetFormat(
        "folders", "class folders (<class>/<video>)", lambda r: r.root.is_dir(), lambda r: load_class_folders(r.root)
    )
)


def load_catalog(
    data: str | Path, dataset: str | None = None, split: int = 1, splits_dir: str | Path | None = None
) -> VideoCatalog:
    """Load the records of ``data`` with the first of :data:`FORMATS` that recognises it."""
    request = CatalogRequest(Path(data), dataset, split, Path(splits_dir) if splits_dir else None)
    if not request.root.exists():
        raise DataError(f"--data {request.root} does not exist")
    for fmt in FORMATS:
        if fmt.detect(request):
            return fmt.load(request)
    raise DataError(f"--data {request.root}: not a layout videoperlin reads; give {format_names()}")
