"""Decode only the start of an encoded clip: the crop happens before decoding, not after.

A dataset's audio value is ``{"bytes": ..., "path": ...}`` (``datasets.Audio(decode=False)``).
soundfile (libsndfile) opens the bytes as a stream and reads ``seconds * rate`` frames from the
start, so a five-minute track cropped to 10 s decodes 10 s, whatever its codec: WAV / FLAC / MP3 /
Ogg Vorbis or Opus (libsndfile >= 1.1 for MP3). No torchcodec or FFmpeg is involved.
"""
from __future__ import annotations

import io
import os
from typing import BinaryIO, Tuple, Union

import numpy as np


class UndecodableAudio(ValueError):
    """One example's audio cannot be decoded (the message says why); the caller skips and counts it."""


def encoded_size(audio: dict) -> int:
    """Bytes of the encoded value (its bytes, or the file its path names; 0 when unknown)."""
    if audio.get("bytes"):
        return len(audio["bytes"])
    path = audio.get("path")
    return os.path.getsize(path) if path and os.path.isfile(path) else 0


def read_start(source: Union[str, BinaryIO], seconds: float) -> Tuple[np.ndarray, int]:
    """(mono float32 samples of the first ``seconds``, native rate) of a path or seekable binary stream."""
    import soundfile

    try:
        with soundfile.SoundFile(source) as sound:
            rate = int(sound.samplerate)
            data = sound.read(frames=max(int(round(seconds * rate)), 1), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as err:  # LibsndfileError is a RuntimeError
        raise UndecodableAudio(f"soundfile (libsndfile {soundfile.__libsndfile_version__}) cannot decode it "
                               f"({_first_line(err)})") from None
    if data.shape[0] == 0:
        raise UndecodableAudio("it holds no audio frames")
    return data.mean(axis=1).astype(np.float32), rate


def decode_start(audio: dict, seconds: float) -> Tuple[np.ndarray, int]:
    """(mono float32 samples, rate) of the first ``seconds`` of an undecoded Audio value."""
    if not isinstance(audio, dict):
        raise UndecodableAudio(f"the audio value is a {type(audio).__name__}, not {{'bytes', 'path'}}")
    if audio.get("bytes"):
        return read_start(io.BytesIO(audio["bytes"]), seconds)
    path = audio.get("path")
    if not path:
        raise UndecodableAudio("it has neither audio bytes nor a path")
    if not os.path.isfile(path):
        raise UndecodableAudio(f"it has no bytes and its path {path} is not a file here")
    return read_start(path, seconds)


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return lines[0][:160] if lines else type(err).__name__
