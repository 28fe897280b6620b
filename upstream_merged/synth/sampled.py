"""Music rendered from sampled instruments: seeded scores -> General MIDI file -> fluidsynth + FluidR3 GM.

NSynth was rendered the same way (MIDI notes through sample-based instruments). The scores reuse the
note generators of :mod:`upstream_merged.synth.music` (keys, progressions, comping, melodies, drum
patterns); the instruments are General MIDI programs grouped in NSynth-like families. fluidsynth renders
offline (``-F``), deterministically for the same file, soundfont and version.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from upstream_merged.synth import music
from upstream_merged.synth.music import Note

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2",)
# NSynth-like instrument families -> General MIDI programs (0-based) that sound like them.
FAMILIES: Dict[str, Tuple[int, ...]] = {
    "keyboard": (0, 1, 2, 3, 4, 5, 6, 7),
    "mallet": (8, 9, 10, 11, 12, 13, 14, 108),
    "organ": (16, 17, 18, 19, 20, 21),
    "guitar": (24, 25, 26, 27, 28, 29, 30, 31),
    "bass": (32, 33, 34, 35, 36, 37, 38, 39),
    "string": (40, 41, 42, 43, 44, 45, 48, 49, 110),
    "brass": (56, 57, 58, 59, 60, 61, 62, 63),
    "reed": (64, 65, 66, 67, 68, 69, 70, 71),
    "flute": (72, 73, 74, 75, 76, 77, 78, 79),
    "synth_lead": (80, 81, 82, 83, 84, 85, 86, 87),
    "vocal": (52, 53, 54, 85),
}
FAMILY_NAMES = tuple(FAMILIES)
# General MIDI percussion keys (channel 10) for the drum kinds of music.DRUM_PATTERNS.
DRUM_KEYS = {"kick": 36, "snare": 38, "hat": 42, "ride": 51}
DRUM_CHANNEL = 9
TICKS_PER_BEAT = 480


class FluidsynthMissingError(RuntimeError):
    """fluidsynth or the General MIDI soundfont is not installed."""


def soundfont() -> str:
    """Path of the General MIDI soundfont, or an error naming the packages to install."""
    if shutil.which("fluidsynth") is None:
        raise FluidsynthMissingError("fluidsynth is not installed; `apt-get install -y fluidsynth fluid-soundfont-gm` "
                                     "(tools/setup_env.sh does)")
    for path in SOUNDFONTS:
        if Path(path).is_file():
            return path
    raise FluidsynthMissingError(f"no General MIDI soundfont at {SOUNDFONTS}; `apt-get install -y fluid-soundfont-gm`")


@dataclass(frozen=True)
class Part:
    """One instrument part: a GM program on its own channel with its notes (Note.timbre is unused here)."""

    program: int
    notes: Tuple[Note, ...]


def write_midi(parts: Sequence[Part], drums: Sequence[Tuple[float, int, int]], tempo: float, path: Path) -> None:
    """A type-1 MIDI file: one track per part (program change + notes) and one drum track (onset, key, velocity)."""
    import mido

    seconds_to_ticks = TICKS_PER_BEAT * tempo / 60.0
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0)])
    midi.tracks.append(meta)
    channels = [c for c in range(16) if c != DRUM_CHANNEL]
    for channel, part in zip(channels, parts):
        events = []
        for n in part.notes:
            on = int(round(n.onset * seconds_to_ticks))
            off = max(on + 1, int(round((n.onset + n.duration) * seconds_to_ticks)))
            events += [(on, 1, "note_on", n.pitch, n.velocity), (off, 0, "note_off", n.pitch, 0)]
        midi.tracks.append(_track([mido.Message("program_change", program=part.program, channel=channel, time=0)],
                                  events, channel))
    if drums:
        events = []
        for onset, key, velocity in drums:
            on = int(round(onset * seconds_to_ticks))
            events += [(on, 1, "note_on", key, velocity), (on + TICKS_PER_BEAT // 8, 0, "note_off", key, 0)]
        midi.tracks.append(_track([], events, DRUM_CHANNEL))
    midi.save(str(path))


def _track(head: list, events: list, channel: int):
    import mido

    track = mido.MidiTrack(head)
    now = 0
    for tick, _, kind, key, velocity in sorted(events):  # note_off (0) before note_on (1) at the same tick
        track.append(mido.Message(kind, note=int(key), velocity=int(velocity), channel=channel, time=tick - now))
        now = tick
    return track


def render_midi(midi_path: Path, out: Path, seconds: float, rate: int = 16000, reverb: bool = True,
                gain: float = 0.5) -> np.ndarray:
    """Render a MIDI file with fluidsynth, mono at ``rate``, cut/padded to ``seconds``, peak-normalised."""
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "render.wav"
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(rate), "-R", "1" if reverb else "0",
               "-C", "0", "-F", str(wav), soundfont(), str(midi_path)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed on {midi_path}: {result.stderr.strip()[:300]}")
        audio, sr = soundfile.read(str(wav), dtype="float32", always_2d=True)
    if sr != rate:
        raise RuntimeError(f"fluidsynth wrote {sr} Hz, asked for {rate}")
    audio = audio.mean(1)
    n = int(round(seconds * rate))
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    peak = float(np.max(np.abs(audio)))
    audio = audio * (music.PEAK / peak) if peak > 0 else audio
    if out is not None:
        soundfile.write(str(out), audio.astype(np.float32), rate, subtype="PCM_16")
    return audio.astype(np.float32)


def _program(rng: np.random.Generator, family: Optional[str] = None) -> Tuple[str, int]:
    family = str(rng.choice(FAMILY_NAMES)) if family is None else family
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is not one of {list(FAMILY_NAMES)}")
    return family, int(rng.choice(FAMILIES[family]))


def _drum_hits(rng: np.random.Generator, pattern: str, tempo: float, seconds: float) -> List[Tuple[float, int, int]]:
    step = 60.0 / tempo / 4.0
    hits = []
    for kind, grid in music.DRUM_PATTERNS[pattern].items():
        for i in range(int(np.ceil(seconds / step))):
            mark = grid[i % 16]
            if mark != ".":
                vel = int((110 if mark == "x" else 50) * rng.uniform(0.85, 1.0))
                hits.append((i * step, DRUM_KEYS[kind], vel))
    return hits


def compose_phrase(rng: np.random.Generator, seconds: float, *, family: Optional[str] = None,
                   key: Optional[str] = None, style: Optional[str] = None
                   ) -> Tuple[List[Part], List[Tuple[float, int, int]], float, dict]:
    """A seeded score: parts, drum hits, tempo and labels (style, family, program, key, tonic, mode, tempo, drums)."""
    family, program = _program(rng, family)
    key = str(rng.choice(music.KEYS)) if key is None else key
    tempo = float(rng.uniform(*music.TEMPO_RANGE))
    style = str(rng.choice(music.STYLES)) if style is None else style
    tonic, mode = music._parse_key(key)
    beat = 60.0 / tempo
    bar = 4 * beat
    octave = 36 if family == "bass" else 60
    drums: List[Tuple[float, int, int]] = []
    drum_pattern = "none"
    parts: List[Part]
    if style == "notes":
        notes, t = [], 0.0
        while t < seconds:
            length = beat * float(rng.choice([0.5, 1.0, 2.0]))
            notes.append(Note(t, length * 0.85, music._scale_pitch(tonic, mode, int(rng.integers(-7, 10)), octave),
                              int(rng.integers(60, 121)), family))
            t += length + beat * float(rng.choice([0.0, 0.0, 0.5, 1.0]))
        parts = [Part(program, tuple(notes))]
    elif style in ("chords", "arpeggios"):
        prog = music.PROGRESSIONS[str(rng.choice([p for p in music.PROGRESSIONS if p != "twelve-bar"]))]
        size = int(rng.choice([3, 3, 4]))
        comp = str(rng.choice(["block", "half", "quarter"] if style == "chords" else ["arpeggio", "arpeggio16"]))
        notes = []
        for b in range(int(np.ceil(seconds / bar))):
            chord = music._chord(tonic, mode, prog[b % len(prog)], octave - 12 if octave == 60 else octave, size)
            notes += music._comp_notes(rng, chord, b * bar, beat, comp, family, int(rng.integers(70, 111)))
        parts = [Part(program, tuple(notes))]
    elif style == "melody":
        notes = music._melody_notes(rng, tonic, mode, 0.0, seconds, beat, float(rng.uniform(0.7, 2.0)), family,
                                    int(rng.integers(70, 111)), octave)
        parts = [Part(program, tuple(notes))]
    else:  # ensemble: the family carries the melody over chords, a bass line and drums
        drum_pattern = str(rng.choice([p for p in music.DRUM_PATTERNS if p != "none"]))
        arr = music.Arrangement(tonic=tonic, mode=mode, tempo=tempo,
                                progression=music.PROGRESSIONS[str(rng.choice(list(music.PROGRESSIONS)))],
                                chord_timbre="chords", chord_size=int(rng.choice([3, 4])),
                                comping=str(rng.choice(music.COMPING[:-1])), bass_timbre="bass",
                                bass_pattern=str(rng.choice(["root", "octaves", "walking"])), melody_timbre="melody",
                                melody_density=float(rng.uniform(0.7, 2.0)))
        notes = music.arrangement_notes(rng, arr, seconds)
        chord_program = _program(rng, str(rng.choice(["keyboard", "organ", "string", "guitar"])))[1]
        bass_program = _program(rng, "bass")[1]
        by_part = {name: tuple(n for n in notes if n.timbre == name) for name in ("chords", "bass", "melody")}
        parts = [Part(program, by_part["melody"]), Part(chord_program, by_part["chords"]),
                 Part(bass_program, by_part["bass"])]
        drums = _drum_hits(rng, drum_pattern, tempo, seconds)
    parts = [Part(p.program, tuple(n for n in p.notes if n.onset < seconds)) for p in parts]
    labels = {"style": style, "family": family, "program": program, "key": key, "tonic": tonic, "mode": mode,
              "tempo": round(tempo, 3), "drums": drum_pattern, "notes": sum(len(p.notes) for p in parts)}
    return parts, drums, tempo, labels


def render_phrase(rng: np.random.Generator, seconds: float, out: Optional[Path] = None, rate: int = 16000,
                  **choices) -> Tuple[np.ndarray, dict]:
    """Compose a seeded phrase and render it through fluidsynth; returns (audio, labels)."""
    parts, drums, tempo, labels = compose_phrase(rng, seconds, **choices)
    reverb = bool(rng.random() < 0.7)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "phrase.mid"
        write_midi(parts, drums, tempo, mid)
        audio = render_midi(mid, out, seconds, rate, reverb=reverb)
    return audio, dict(labels, reverb=reverb)


def render_note(program: int, pitch: int, velocity: int, seconds: float, out: Optional[Path] = None,
                rate: int = 16000, hold: float = 0.75) -> np.ndarray:
    """One sampled note (NSynth style): ``pitch`` held for ``hold`` of ``seconds``, then released."""
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "note.mid"
        write_midi([Part(program, (Note(0.0, seconds * hold, pitch, velocity, ""),))], [], 120.0, mid)
        return render_midi(mid, out, seconds, rate, reverb=False)


def render_notes(notes: Sequence[Tuple[int, int, int]], seconds: float, rate: int = 16000, hold: float = 0.75,
                 gap: float = 0.5) -> List[np.ndarray]:
    """Many sampled notes (program, pitch, velocity) from one fluidsynth run, each as :func:`render_note` shapes it.

    Each note gets its own slot of ``seconds`` (held for ``hold`` of it) followed by ``gap`` seconds; at
    the slot's end an All Sound Off cuts whatever still rings, so no note leaks into the next. Every
    note is peak-normalised on its own. One run pays fluidsynth's soundfont load once.
    """
    import mido

    if not notes:
        return []
    slot = seconds + gap
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    ticks = lambda t: int(round(t * TICKS_PER_BEAT * 2))  # noqa: E731  (120 bpm: 2 beats per second)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0)])
    now = 0
    for index, (program, pitch, velocity) in enumerate(notes):
        start = index * slot
        for at, message in ((start, mido.Message("program_change", program=int(program), channel=0)),
                            (start, mido.Message("note_on", note=int(pitch), velocity=int(velocity), channel=0)),
                            (start + seconds * hold, mido.Message("note_off", note=int(pitch), velocity=0, channel=0)),
                            (start + seconds, mido.Message("control_change", control=120, value=0, channel=0))):
            tick = ticks(at)
            track.append(message.copy(time=tick - now))
            now = tick
    track.append(mido.MetaMessage("end_of_track", time=ticks(len(notes) * slot) - now))
    midi.tracks.append(track)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "notes.mid"
        midi.save(str(mid))
        audio = render_midi(mid, None, len(notes) * slot, rate, reverb=False, gain=0.5)
    out = []
    for index in range(len(notes)):
        start = int(round(index * slot * rate))
        note = audio[start: start + int(round(seconds * rate))].copy()
        peak = float(np.max(np.abs(note)))
        out.append((note * (music.PEAK / peak) if peak > 0 else note).astype(np.float32))
    return out
