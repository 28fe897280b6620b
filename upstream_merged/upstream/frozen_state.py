"""Small ``-f`` checkpoints: an upstream's state dict holds its trainable tensors + a fingerprint of its frozen parts.

s3prl's runner saves ``upstream.state_dict()`` under ``-f`` and, for ``-m evaluate -e`` and resuming
(``-e`` / ``-a``), rebuilds the entry and calls a strict ``load_state_dict``. :func:`keep_frozen_out_of_state_dict`
takes the frozen parts (fusion backbones, L-MAM source and frozen target weights) out of the state dict
and puts one small uint8 tensor in their place (``frozen_fingerprint._extra_state``: JSON with, per part,
the tensor and parameter counts, a sha256 of names+dtypes+shapes and a sha256 of names+dtypes+shapes+bytes),
computed once when the upstream is built. Loading refuses a state whose fingerprint — or, for a
checkpoint that still holds the frozen tensors, whose tensors — differ from the rebuilt parts, naming
the part; the frozen keys a small state lacks are not reported missing. All of it is torch's public
state-dict hooks and extra state, so the stock runner needs no change.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import nn

from upstream_merged.models.checkpoint import CheckpointError

logger = logging.getLogger(__name__)

FINGERPRINT_MODULE = "frozen_fingerprint"
FINGERPRINT_KEY = f"{FINGERPRINT_MODULE}._extra_state"  # the fingerprint's key in the owner's state dict
FORMAT_VERSION = 1
DEFAULT_SOURCE = "the loaded upstream state (e.g. a run_downstream.py checkpoint's 'Upstream')"


class FrozenStateMismatch(CheckpointError):
    """A saved state was trained on frozen parts other than the ones this upstream was rebuilt with."""


@dataclass(frozen=True)
class PartDigest:
    """Fingerprint of one frozen part: counts, sha256 of the layout (names, dtypes, shapes) and of the values."""

    tensors: int
    parameters: int
    layout: str
    values: str


def _raw_bytes(tensor: torch.Tensor):
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()  # a zero-copy buffer of the tensor's bytes


def digest_tensors(named: Iterable[Tuple[str, torch.Tensor]]) -> PartDigest:
    """sha256 fingerprint over (name, dtype, shape, bytes) of every tensor, in name order."""
    layout, values = hashlib.sha256(), hashlib.sha256()
    count = parameters = 0
    for name, tensor in sorted(named, key=lambda item: item[0]):
        header = f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode()
        layout.update(header)
        values.update(header)
        values.update(_raw_bytes(tensor))
        count += 1
        parameters += tensor.numel()
    return PartDigest(count, parameters, layout.hexdigest(), values.hexdigest())


def encode_fingerprint(digests: Mapping[str, PartDigest]) -> torch.Tensor:
    """The fingerprint as a uint8 tensor (UTF-8 JSON), so every state-dict value stays a tensor."""
    text = json.dumps({"format_version": FORMAT_VERSION, "parts": {p: asdict(d) for p, d in sorted(digests.items())}},
                      sort_keys=True)
    return torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()


def decode_fingerprint(tensor: torch.Tensor, source: str) -> Dict[str, PartDigest]:
    """Read a fingerprint tensor written by :func:`encode_fingerprint`; a malformed one raises naming ``source``."""
    try:
        data = json.loads(bytes(tensor.detach().to("cpu", torch.uint8).reshape(-1).tolist()).decode())
        if data["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format_version {data['format_version']!r}, this plugin reads {FORMAT_VERSION}")
        return {part: PartDigest(**digest) for part, digest in data["parts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise FrozenStateMismatch(
            f"{source}: {FINGERPRINT_KEY} is not a readable frozen-part fingerprint ({err})") from None


class FrozenFingerprint(nn.Module):
    """Stands in for its owner's frozen parts in the state dict: their fingerprint, checked on load."""

    def __init__(self, parts: Dict[str, List[str]], digests: Dict[str, PartDigest], kind: str, owner: str):
        super().__init__()
        self.parts = parts  # part -> state-dict keys (relative to the owner) it covers
        self.digests = digests
        self.frozen_keys = frozenset(key for keys in parts.values() for key in keys)
        self.kind, self.owner = kind, owner
        self.sources: Dict[str, str] = {}  # part -> where this upstream built it from (for messages only)
        self._load_prefix = ""
        self._verified_from_tensors = False

    def describe(self, owner: Optional[str] = None, sources: Optional[Mapping[str, object]] = None) -> None:
        """Name the owner (e.g. the hub entry) and each part's source in mismatch messages."""
        if owner:
            self.owner = owner
        if sources:
            self.sources.update({str(part): str(source) for part, source in sources.items()})

    def get_extra_state(self) -> torch.Tensor:
        return encode_fingerprint(self.digests)

    def set_extra_state(self, state: object) -> None:
        """Nothing to restore: the owner's load pre-hook has already compared the fingerprint."""

    def verify(self, state: Mapping[str, object], prefix: str = "", source: str = DEFAULT_SOURCE) -> bool:
        """Compare the fingerprint (or frozen tensors) in ``state`` with this upstream's; False if it has neither."""
        saved = state.get(prefix + FINGERPRINT_KEY)
        if saved is not None:
            theirs = decode_fingerprint(saved, source)
        else:
            present = {key for key in self.frozen_keys if prefix + key in state}
            if not present:
                return False
            theirs = {part: digest_tensors((key, state[prefix + key]) for key in keys if key in present)
                      for part, keys in self.parts.items() if any(key in present for key in keys)}
        differences = self._differences(theirs)
        if differences:
            raise FrozenStateMismatch(self._message(source, differences))
        return True

    def _differences(self, theirs: Mapping[str, PartDigest]) -> List[str]:
        found = []
        for part in sorted(set(theirs) | set(self.digests)):
            saved, here = theirs.get(part), self.digests.get(part)
            label = f"{self.kind} {part!r}"
            if here is None:
                found.append(f"{label} is in the checkpoint but not in this upstream")
            elif saved is None:
                found.append(f"{label} of this upstream is not in the checkpoint")
            elif saved.layout != here.layout:
                found.append(f"{label} has another architecture (checkpoint: {saved.tensors} tensors, "
                             f"{saved.parameters:,} values; here: {here.tensors} tensors, {here.parameters:,} values)")
            elif saved.values != here.values:
                found.append(f"{label} has the same tensor names and shapes but different weights "
                             f"(sha256 {saved.values[:12]} in the checkpoint, {here.values[:12]} here)")
        return found

    def _message(self, source: str, differences: List[str]) -> str:
        built = ", ".join(f"{part} = {src}" for part, src in sorted(self.sources.items()))
        return (f"{source}: {self.owner} refuses a state whose frozen parts differ from the ones rebuilt here: "
                + "; ".join(differences)
                + (f". This upstream was rebuilt from {built}" if built else "")
                + ". Evaluate or resume the checkpoint with the entry and -k/-g it was trained with "
                  "(s3prl stores them in the checkpoint's Args), or retrain.")


def _drop_frozen(module: nn.Module, state_dict: Dict[str, object], prefix: str, local_metadata: dict) -> None:
    for key in getattr(module, FINGERPRINT_MODULE).frozen_keys:
        state_dict.pop(prefix + key, None)


def _check_before_load(module: nn.Module, state_dict: Mapping[str, object], prefix: str, local_metadata: dict,
                       strict: bool, missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    fingerprint = getattr(module, FINGERPRINT_MODULE)
    fingerprint._load_prefix = prefix
    fingerprint._verified_from_tensors = (fingerprint.verify(state_dict, prefix)
                                          and prefix + FINGERPRINT_KEY not in state_dict)


def _forgive_missing_frozen(module: nn.Module, incompatible_keys) -> None:
    fingerprint = getattr(module, FINGERPRINT_MODULE)
    prefix = fingerprint._load_prefix
    allowed = {prefix + key for key in fingerprint.frozen_keys}
    if fingerprint._verified_from_tensors:  # an older full state: its frozen tensors were compared instead
        allowed.add(prefix + FINGERPRINT_KEY)
    incompatible_keys.missing_keys[:] = [key for key in incompatible_keys.missing_keys if key not in allowed]


def keep_frozen_out_of_state_dict(module: nn.Module, part_of: Callable[[str], Optional[str]], kind: str,
                                  owner: Optional[str] = None) -> FrozenFingerprint:
    """Save only ``module``'s non-frozen tensors + a fingerprint of the frozen ones; refuse other frozen parts on load.

    ``part_of(key)`` names the frozen part a state-dict key belongs to, or None for a key that is saved.
    """
    if hasattr(module, FINGERPRINT_MODULE):
        raise ValueError(f"{type(module).__name__} already keeps its frozen parts out of its state dict")
    state = module.state_dict(keep_vars=True)
    parts: Dict[str, List[str]] = {}
    for key in state:
        part = part_of(key)
        if part is not None:
            parts.setdefault(part, []).append(key)
    digests = {part: digest_tensors((key, state[key]) for key in keys) for part, keys in parts.items()}
    fingerprint = FrozenFingerprint(parts, digests, kind, owner or type(module).__name__)
    module.add_module(FINGERPRINT_MODULE, fingerprint)
    module.register_state_dict_post_hook(_drop_frozen)
    module.register_load_state_dict_pre_hook(_check_before_load)
    module.register_load_state_dict_post_hook(_forgive_missing_frozen)
    logger.debug("%s: %d frozen %s(s) (%d tensors) saved as a fingerprint", fingerprint.owner, len(parts), kind,
                 len(fingerprint.frozen_keys))
    return fingerprint
