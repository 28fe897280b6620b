"""Reading Hugging Face-format checkpoint directories and strict state-dict loading."""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Mapping

import torch

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not match the model it is loaded into."""


class PickleRequiredError(CheckpointError):
    """A torch file holds Python objects that only a full (code-executing) unpickling can rebuild."""


class NonFiniteTensorError(CheckpointError):
    """A weight tensor holds NaN or Inf values."""


def check_finite(state: Mapping[str, torch.Tensor], source: str, what: str = "checkpoint") -> None:
    """Raise NonFiniteTensorError naming every floating tensor of ``state`` that holds NaN or Inf."""
    bad = []
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        if bool(torch.isfinite(tensor.detach().sum())):  # fast path: NaN/Inf propagate into the sum
            continue
        finite = torch.isfinite(tensor.detach())
        if bool(finite.all()):  # the sum overflowed, the values are fine
            continue
        nan = int(torch.isnan(tensor.detach()).sum())
        bad.append(f"{name} ({nan} NaN, {int((~finite).sum()) - nan} Inf of {tensor.numel()})")
    if bad:
        raise NonFiniteTensorError(
            f"{source}: {what} tensor(s) hold non-finite values: {_summarise(bad)}; the weights are corrupt "
            f"(a diverged training run or a broken conversion): use an intact copy"
        )


def _truncated(path: Path, err: BaseException) -> CheckpointError:
    detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return CheckpointError(
        f"{path} is truncated or corrupt ({type(err).__name__}: {detail}); it was probably cut short by an "
        f"interrupted download or copy: download or copy it again"
    )


def load_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    """The tensors of a .safetensors file; a truncated or corrupt file raises CheckpointError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise _truncated(Path(path), err) from None


def torch_load_weights_only(path: Path, allow_pickle: bool = False):
    """``torch.load`` of a torch file, weights-only unless ``allow_pickle``; named errors for corrupt files.

    A file that needs full unpickling raises PickleRequiredError (unless ``allow_pickle``); a
    truncated or corrupt file raises CheckpointError naming it.
    """
    path = Path(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as err:
        if not allow_pickle and "weights only load failed" in str(err).lower():
            blocked = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "global" in line), "")
            raise PickleRequiredError(
                f"{path} holds Python objects besides tensors and plain containers ({blocked or 'see torch.load'}); "
                f"it loads only with full unpickling, which can run arbitrary code"
            ) from None
        raise _truncated(path, err) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise _truncated(path, err) from None


def read_config(directory: Path) -> dict:
    """The parsed config.json of a checkpoint directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"no config.json in {directory} (expected a Hugging Face model directory)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None


def read_weights(directory: Path) -> Dict[str, torch.Tensor]:
    """The state dict stored in a checkpoint directory (safetensors preferred, .bin loaded weights-only)."""
    directory = Path(directory)
    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".safetensors"):
            return load_safetensors(path)
        try:
            state = torch_load_weights_only(path)
        except PickleRequiredError as err:
            raise PickleRequiredError(f"{err}. Weights of a Hugging Face directory must be plain tensors: re-save "
                                      f"them as model.safetensors") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} does not hold a state dict")
        return state
    raise CheckpointError(f"no weights in {directory}: expected one of {', '.join(WEIGHT_FILES)}")


def _summarise(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``: every key used, every parameter/buffer filled, shapes equal, all finite."""
    expected = model.state_dict()
    unknown = set(state) - set(expected)
    missing = set(expected) - set(state)
    if unknown:
        raise CheckpointError(f"{source}: checkpoint keys the model does not have: {_summarise(unknown)}")
    if missing:
        raise CheckpointError(f"{source}: model parameters the checkpoint does not fill: {_summarise(missing)}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: shape mismatch for {key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[key].shape)}"
            )
    check_finite(state, source)
    model.load_state_dict(state, strict=True)


# Old torch weight_norm names <-> torch.nn.utils.parametrizations names (published checkpoints use either).
WEIGHT_NORM_NAMES = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


def rename_checkpoint_keys(
    state: Dict[str, torch.Tensor], model_keys: Iterable[str], prefixes: Iterable[str] = ()
) -> Dict[str, torch.Tensor]:
    """Map checkpoint keys onto ``model_keys``: strip wrapper prefixes, translate weight-norm names."""
    model_keys = set(model_keys)
    out = {}
    for key, tensor in state.items():
        for prefix in prefixes:
            if key.startswith(prefix) and _translate(key[len(prefix):], model_keys) in model_keys:
                key = key[len(prefix):]
                break
        out[_translate(key, model_keys)] = tensor
    return out


def _translate(key: str, model_keys: set) -> str:
    if key in model_keys:
        return key
    for old, new in WEIGHT_NORM_NAMES.items():
        for have, want in ((old, new), (new, old)):
            if key.endswith("." + have) and key[: -len(have)] + want in model_keys:
                return key[: -len(have)] + want
    return key
