"""``python -m upstream_merged check-sources RECIPE``: resolve a recipe's model sources and calibration datasets first.

Before anything is loaded, every ``sources`` entry (tiny:/small: models, local paths, Hugging Face ids) and
every ``calibration.datasets`` entry is looked up - in the plugin's and the Hugging Face caches, and on
the hub when it can be reached (one metadata request per id, nothing downloaded) - and one line per
source says what a merge would fetch and how large it is, or what is wrong with it: an id that does not
exist, a gated model, a dataset that needs a loading script, a config / split / audio column the dataset
card does not declare, fewer examples than ``clips``. Offline, it says so and lists what it would fetch.
Exit status: 0 all sources resolve, 1 at least one is wrong, 2 some could not be checked (hub unreachable).
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

OK, CACHED, BAD, UNREACHABLE, UNVERIFIED = "ok", "cached", "BAD", "unreachable", "unverified"
TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Finding:
    """What check-sources found for one source of a recipe."""

    kind: str  # "model" or "dataset"
    name: str  # the role (a, b, target ...) or the dataset's domain / position
    target: str  # the id, path or dataset label
    status: str  # ok, cached, BAD, unreachable, unverified
    detail: str  # what would be fetched and how large, or what is wrong and how to fix it
    fetch_bytes: int = 0  # bytes a build would fetch (0: nothing, or unknown)


def hub_api():
    """The Hugging Face hub client (a seam: tests replace it with a fake)."""
    from huggingface_hub import HfApi

    return HfApi()


def hub_offline_reason() -> Optional[str]:
    """Why the hub is not to be contacted (HF_HUB_OFFLINE), or None."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return "HF_HUB_OFFLINE is set"
    return None


def human_size(size: float) -> str:
    """Bytes as B / kB / MB / GB (decimal units, as the hub shows them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000.0
    return f"{size:.1f} GB"


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return (lines[0][:200] if lines else "") or type(err).__name__


def _hub_error(err: BaseException) -> Tuple[str, str]:
    """(status, reason) of a failed hub request: a wrong id/revision is BAD, anything else unreachable."""
    name = type(err).__name__
    if name == "GatedRepoError":
        return BAD, "gated: accept its terms on the hub and log in (`huggingface-cli login`)"
    if name in ("RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError"):
        return BAD, f"not found on the hub ({name}: {_first_line(err)}); check the spelling (owner/name) and revision"
    if name == "OfflineModeIsEnabled":
        return UNREACHABLE, "HF_HUB_OFFLINE is set"
    return UNREACHABLE, f"{name}: {_first_line(err)}"


def _listing(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _folder_size(path: Path) -> Tuple[int, int]:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# --------------------------------------------------------------------------------------------- models
def check_model(role: str, source: str) -> Finding:
    """Where model ``source`` comes from and what loading it would fetch."""
    from upstream_merged.sources import _WEIGHT_PATTERNS, source_kind

    kind = source_kind(source)
    if kind in ("tiny", "small"):
        return Finding("model", role, source, OK, f"{kind} model shipped in the package; nothing to fetch")
    if kind == "path":
        count, size = _folder_size(Path(source).expanduser())
        return Finding("model", role, source, OK, f"local {'file' if count == 1 and Path(source).is_file() else 'dir'}"
                       f", {count} files, {human_size(size)}; nothing to fetch")
    if kind == "missing":
        if source.startswith("<"):
            return Finding("model", role, source, BAD, "a placeholder: supply the checkpoint with -k FILE, or copy "
                                                       "the recipe and name the file in its sources")
        return Finding("model", role, source, BAD, "no such file or directory, and not a Hugging Face id "
                                                   "(owner/name); fix the path or the id")
    cached = _cached_snapshot(source)
    offline = hub_offline_reason()
    if offline is not None:
        if cached is not None:
            return Finding("model", role, source, CACHED, f"in the local Hugging Face cache ({cached}); hub not "
                                                          f"checked ({offline})")
        return Finding("model", role, source, UNREACHABLE, f"cannot reach the Hugging Face hub ({offline}) and not in "
                       f"the local cache: a build would fetch model {source}, files {', '.join(_WEIGHT_PATTERNS)}")
    try:
        info = hub_api().model_info(source, files_metadata=True, timeout=TIMEOUT_SECONDS)
    except Exception as err:  # noqa: BLE001 - classified into BAD / unreachable with the reason
        status, reason = _hub_error(err)
        if status == UNREACHABLE and cached is not None:
            return Finding("model", role, source, CACHED, f"in the local Hugging Face cache ({cached}); the hub "
                                                          f"could not be reached to re-check it ({reason})")
        if status == UNREACHABLE:
            reason = (f"cannot reach the Hugging Face hub ({reason}): a build would fetch model {source}, files "
                      f"{', '.join(_WEIGHT_PATTERNS)}")
        return Finding("model", role, source, status, reason)
    files = [(s.rfilename, int(getattr(s, "size", 0) or 0)) for s in (info.siblings or [])
             if any(fnmatch.fnmatch(s.rfilename, pattern) for pattern in _WEIGHT_PATTERNS)]
    if not any(name.endswith(("config.json", ".pt")) for name, _ in files):
        return Finding("model", role, source, BAD, f"exists on the hub but holds no config.json or .pt checkpoint "
                                                   f"(files: {_listing([s.rfilename for s in info.siblings or []])})")
    total = sum(size for _, size in files)
    gated = f" (gated: {info.gated}; a login with accepted terms is needed)" if getattr(info, "gated", False) else ""
    if cached is not None:
        return Finding("model", role, source, CACHED, f"in the local Hugging Face cache ({cached}); on the hub "
                       f"{len(files)} files, {human_size(total)}{gated}")
    return Finding("model", role, source, OK, f"hub: fetch {len(files)} files, {human_size(total)}: "
                   f"{_listing(sorted(name for name, _ in files))}{gated}", fetch_bytes=total)


def _cached_snapshot(repo_id: str) -> Optional[str]:
    from upstream_merged.sources import _WEIGHT_PATTERNS

    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, allow_patterns=_WEIGHT_PATTERNS, local_files_only=True)
    except Exception:  # noqa: BLE001 - absent or unreadable: the hub check below says the rest
        return None


# ------------------------------------------------------------------------------------------- datasets
def check_dataset(entry, name: str, seed: int, clip_seconds: float) -> Finding:
    """Whether calibration dataset ``entry`` resolves, and what its first build would fetch."""
    from upstream_merged.cache import is_complete
    from upstream_merged.permutation.calibration_datasets import dataset_cache_dir, dataset_label

    label = dataset_label(entry)
    target = dataset_cache_dir(entry, seed, clip_seconds)
    if is_complete(target):
        return Finding("dataset", name, label, CACHED, f"{entry.clips} chosen clips cached in {target}; nothing to "
                                                       f"fetch")
    if entry.id in _packaged_builders():
        return _check_local_files(entry, name, label)
    if Path(entry.id).expanduser().exists():
        script = Path(entry.id) / f"{Path(entry.id).name}.py"
        if script.is_file():
            return Finding("dataset", name, label, BAD, _script_message(script.name))
        count, size = _folder_size(Path(entry.id).expanduser())
        return Finding("dataset", name, label, OK, f"local dataset dir, {count} files, {human_size(size)}")
    if entry.id.startswith(("/", ".", "~")):
        return Finding("dataset", name, label, BAD, "no such local dataset dir")
    offline = hub_offline_reason()
    would = (f"a build would {'stream' if entry.streaming else 'download the split and pick'} {entry.clips} clips of "
             f"{label}" + (f" (+ a shuffle buffer of {entry.shuffle_buffer} examples)" if entry.streaming else "")
             + f" into {target}")
    if offline is not None:
        return Finding("dataset", name, label, UNREACHABLE, f"cannot reach the Hugging Face hub ({offline}): {would}")
    try:
        info = hub_api().dataset_info(entry.id, revision=entry.revision, files_metadata=True, timeout=TIMEOUT_SECONDS)
    except Exception as err:  # noqa: BLE001 - classified into BAD / unreachable with the reason
        status, reason = _hub_error(err)
        if status == UNREACHABLE:
            reason = f"cannot reach the Hugging Face hub ({reason}): {would}"
        return Finding("dataset", name, label, status, reason)
    return _check_hub_dataset(entry, name, label, info)


def _script_message(script: str) -> str:
    import datasets

    return (f"script-based dataset ({script}): datasets {datasets.__version__} does not run loading scripts "
            f"(removed in datasets 4.0); use a Parquet copy of it, or `revision: refs/convert/parquet`")


def _packaged_builders() -> Iterable[str]:
    try:
        from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

        return set(_PACKAGED_DATASETS_MODULES)
    except Exception:  # noqa: BLE001 - datasets missing or reorganised: the usual builder names
        return {"parquet", "arrow", "csv", "json", "audiofolder", "webdataset"}


def _check_local_files(entry, name: str, label: str) -> Finding:
    import glob

    if not entry.data_files:
        return Finding("dataset", name, label, BAD, f"builder {entry.id!r} needs data_files in the recipe entry")
    files = sorted({f for pattern in entry.data_files for f in glob.glob(os.path.expanduser(pattern))})
    missing = [p for p in entry.data_files if not glob.glob(os.path.expanduser(p))]
    if missing:
        return Finding("dataset", name, label, BAD, f"data_files match nothing: {_listing(missing)}")
    return Finding("dataset", name, label, OK, f"local {entry.id} files: {len(files)}, "
                   f"{human_size(sum(os.path.getsize(f) for f in files))}")


def _card(info) -> dict:
    card = getattr(info, "card_data", None)
    if card is None:
        return {}
    return card.to_dict() if hasattr(card, "to_dict") else dict(card)


def _config_infos(card: dict) -> List[dict]:
    infos = card.get("dataset_info") or []
    return [infos] if isinstance(infos, dict) else list(infos)


def _patterns(data_files, split: str) -> Optional[List[str]]:
    """The path patterns of ``split`` in a card's ``data_files`` (None: the split is not declared)."""
    if isinstance(data_files, str):
        return [data_files] if split == "train" else None
    for item in data_files or []:
        if isinstance(item, dict) and item.get("split") == split:
            paths = item.get("path")
            return [paths] if isinstance(paths, str) else list(paths or [])
    return None


def _audio_feature(features, column: str) -> Tuple[bool, Optional[str]]:
    """(is the column declared as Audio, its declared sampling rate) from a card's feature list."""
    for feature in features or []:
        if feature.get("name") != column:
            continue
        dtype = feature.get("dtype")
        if dtype == "audio":
            return True, None
        if isinstance(dtype, dict) and "audio" in dtype:
            rate = (dtype["audio"] or {}).get("sampling_rate")
            return True, f"{rate} Hz" if rate else None
        raise ValueError(f"column {column!r} is declared as {dtype!r}, not audio")
    raise KeyError(column)


def _check_hub_dataset(entry, name: str, label: str, info) -> Finding:
    """Config, split, audio column, size and script checks from the dataset's file list and card."""
    siblings = [(s.rfilename, int(getattr(s, "size", 0) or 0)) for s in (getattr(info, "siblings", None) or [])]
    script = f"{entry.id.split('/')[-1]}.py"
    if any(path == script for path, _ in siblings):
        return Finding("dataset", name, label, BAD, _script_message(script))
    card = _card(info)
    config = entry.config or "default"
    configs = card.get("configs") or []
    notes = []
    if configs:
        declared = {c.get("config_name", "default"): c for c in configs}
        chosen = declared.get(config) or (configs[0] if entry.config is None and len(configs) == 1 else None)
        if chosen is None:
            return Finding("dataset", name, label, BAD, f"no config {config!r} on the dataset card (configs: "
                           f"{sorted(declared)}); set config in the recipe entry")
        config = chosen.get("config_name", "default")
        patterns = _patterns(chosen.get("data_files"), entry.split)
        if patterns is None:
            splits = sorted({d.get("split") for d in chosen.get("data_files") or [] if isinstance(d, dict)})
            return Finding("dataset", name, label, BAD, f"config {config!r} has no split {entry.split!r} (splits: "
                           f"{splits}); set split in the recipe entry")
        if entry.data_dir:
            patterns = [f"{entry.data_dir.rstrip('/')}/{p}" for p in patterns]
        files = [(p, s) for p, s in siblings if any(fnmatch.fnmatch(p, pattern) for pattern in patterns)]
    else:
        token = re.compile(rf"(^|/){re.escape(entry.split)}([-_.]|/|$)")
        files = [(p, s) for p, s in siblings if token.search(p) and not p.endswith((".md", ".py", ".json"))]
        notes.append("no configs on the card: split files inferred from file names")
    if not files:
        return Finding("dataset", name, label, BAD, f"no data files for split {entry.split!r} of config {config!r} "
                       f"in the repository ({len(siblings)} files)")
    formats = sorted({Path(p).suffix.lstrip(".") or "?" for p, _ in files})
    split_bytes = sum(size for _, size in files)
    infos = {i.get("config_name", "default"): i for i in _config_infos(card)}
    config_info = infos.get(config) or (next(iter(infos.values())) if len(infos) == 1 else None)
    examples = None
    rate = None
    if config_info is not None:
        try:
            _, rate = _audio_feature(config_info.get("features"), entry.audio_column)
        except KeyError:
            columns = [f.get("name") for f in config_info.get("features") or []]
            return Finding("dataset", name, label, BAD, f"no column {entry.audio_column!r} on the dataset card "
                           f"(columns: {columns}); set audio_column in the recipe entry")
        except ValueError as err:
            return Finding("dataset", name, label, BAD, f"{err}; set audio_column in the recipe entry")
        examples = next((int(s.get("num_examples")) for s in config_info.get("splits") or []
                         if s.get("name") == entry.split and s.get("num_examples") is not None), None)
    else:
        notes.append("features not declared on the card: the audio column is checked when the merge opens it")
    if examples is not None and examples < entry.clips:
        return Finding("dataset", name, label, BAD, f"the split has {examples} examples; the recipe asks for clips: "
                       f"{entry.clips}")
    if entry.streaming:
        share = min(1.0, (entry.clips + entry.shuffle_buffer) / examples) if examples else 1.0
        fetch = int(split_bytes * share)
        how = (f"streaming {entry.clips} clips reads about {human_size(fetch)}" if examples else
               f"streaming {entry.clips} clips reads at most {human_size(split_bytes)}")
    else:
        fetch, how = split_bytes, f"downloads the whole split, {human_size(split_bytes)}"
    audio = f"audio column {entry.audio_column!r} ({rate or 'native rate per file'})" if config_info else \
        f"audio column {entry.audio_column!r} (unchecked)"
    gated = "; gated: a login with accepted terms is needed" if getattr(info, "gated", False) else ""
    detail = (f"hub {'/'.join(formats)}: {len(files)} files, {human_size(split_bytes)} in the split"
              + (f" ({examples:,} examples)" if examples else "") + f", {audio}; {how}{gated}"
              + "".join(f"; {note}" for note in notes))
    return Finding("dataset", name, label, OK if config_info is not None else UNVERIFIED, detail, fetch_bytes=fetch)


# --------------------------------------------------------------------------------------------- recipe
def check_recipe(recipe) -> List[Finding]:
    """A finding for every model source and calibration dataset of ``recipe``."""
    findings = [check_model(role, str(source)) for role, source in recipe.sources.items()]
    calibration = getattr(recipe, "calibration", None)
    for number, entry in enumerate(getattr(calibration, "datasets", None) or []):
        findings.append(check_dataset(entry, entry.domain or f"#{number}", recipe.seed, calibration.clip_seconds))
    return findings


def exit_status(findings: Sequence[Finding]) -> int:
    """0 all resolve, 1 something is wrong, 2 something could not be checked."""
    if any(f.status == BAD for f in findings):
        return 1
    return 2 if any(f.status in (UNREACHABLE, UNVERIFIED) for f in findings) else 0


def report(findings: Sequence[Finding], recipe_path: str) -> str:
    """The lines check-sources prints."""
    lines = [f"sources of {recipe_path}:"]
    width = max((len(f.target) for f in findings), default=0)
    for f in findings:
        lines.append(f"  {f.status:<11} {f.kind:<7} {f.name:<7} {f.target:<{width}}  {f.detail}")
    total = sum(f.fetch_bytes for f in findings)
    bad = [f for f in findings if f.status == BAD]
    unreachable = [f for f in findings if f.status == UNREACHABLE]
    unverified = [f for f in findings if f.status == UNVERIFIED]
    if total:
        lines.append(f"a build would fetch about {human_size(total)} from the hub (the sources marked ok)")
    if unreachable:
        lines.append(f"the Hugging Face hub could not be reached: {len(unreachable)} source(s) not checked, sizes "
                     f"unknown; a build would fetch: " + ", ".join(f.target for f in unreachable))
    if unverified:
        lines.append(f"{len(unverified)} dataset(s) found but not fully checked (see above): "
                     + ", ".join(f.target for f in unverified))
    if bad:
        lines.append(f"{len(bad)} source(s) will fail: " + ", ".join(f.target for f in bad))
    elif not unreachable and not unverified:
        lines.append("every source resolves" + ("" if total else "; nothing to fetch"))
    return "\n".join(lines)


def run(recipe_path: str) -> int:
    """Check ``recipe_path`` and print the report; returns the exit status."""
    from upstream_merged.recipe import load_recipe

    findings = check_recipe(load_recipe(recipe_path))
    print(report(findings, recipe_path))
    return exit_status(findings)


def add_parser(sub, add_command) -> None:
    """Register ``check-sources RECIPE`` on the CLI."""
    command = add_command(sub, "check-sources", lambda args: run(args.recipe),
                          "resolve a recipe's model sources and calibration datasets (ids, configs, splits, sizes) "
                          "before building; exit 1 if one will fail")
    command.add_argument("recipe", help="recipe YAML")
