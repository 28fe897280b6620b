"""Synthesize a tiny LibriSpeech-layout corpus that s3prl 0.4.18's stock ``asr`` recipe reads as is.

    <out>/LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac     16 kHz mono 16-bit FLAC
    <out>/LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt       "<utt id> UPPER CASE TEXT"
    <out>/len_for_bucket/<split>.csv   what s3prl's preprocess/generate_len_for_bucket.py writes:
                                       index, file_path (relative to LibriSpeech/), length (samples), label
    <out>/char.dict                    the character vocabulary ("<symbol> <count>"; '|' = word boundary),
                                       same 28 symbols and order as SUPERB's asr/char.dict

Point the recipe at it with ``-o config.downstream_expert.datarc.libri_root=<out>/LibriSpeech,,
...bucket_file=<out>/len_for_bucket,,...dict_path=<out>/char.dict`` (:func:`asr_overrides` builds that).
Sentences come from a seeded word list, speakers from tools/synth.py: the same arguments give the same
text and audio. Needs espeak-ng and sox (with FLAC support).
"""
from __future__ import annotations

import csv
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from upstream_merged.data.runner import Layout, WORKERS, option
from upstream_merged.data.shared import Speaker, require_tools, speak

SPLITS = ("train-clean-100", "dev-clean", "test-clean")
# SUPERB's char.dict symbols in its order (LibriSpeech character frequency); '|' separates words.
CHARS = list("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")
WORDS = """the a of and to in is it that was he for on are with as his they at be this from have or by one
had not but what all were when we there can an your which their said if do will each about how up out them
then she many some so these would other into has more her two like him see time could no make than first been
its who now people my made over did down only way find use may water long little very after words called just
where most know get through back much before go good new write our used me man too any day same right look think
also around another came come work three word must because does part even place well such here take why things
help put years different away again off went old number great tell men say small every found still between name
should home big give air line set own under read last never us left end along while might next sound below saw
something thought both few those always looked show large often together asked house world going want school
important until form food keep children feet land side without boy once animals life enough took sometimes four
head above kind began almost live page got earth need far hand high year mother light parts country father let
night following picture being study second eyes soon times story boys since white days ever paper hard near
sentence better best across during today others however sure means knew it's try told young miles sun ways thing
whole hear example heard several change answer room sea against top turned learn point city play toward five
using himself usually""".split()
SAMPLE_RATE = 16000


def sentence(rng: random.Random, low: int = 3, high: int = 6) -> str:
    """A short upper-case sentence of words from the word list."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).upper()


def plan_corpus(speakers: int, chapters: int, utterances: int, seed: int) -> List[Tuple[str, int, int, int, str]]:
    """Deterministic (split, speaker id, chapter id, utterance index, text) for every utterance."""
    rng = random.Random(seed)
    items = []
    for split_index, split in enumerate(SPLITS):
        for s in range(speakers):
            speaker_id = 100 * (split_index + 1) + s  # distinct numeric ids per split, as in LibriSpeech
            for c in range(chapters):
                chapter_id = 1000 * (split_index + 1) + 10 * s + c
                for u in range(utterances):
                    items.append((split, speaker_id, chapter_id, u, sentence(rng)))
    return items


def flac_frames(path: Path) -> int:
    """Number of samples in an audio file (as torchaudio.info(...).num_frames in s3prl's script)."""
    import soundfile

    return soundfile.info(str(path)).frames


def write_bucket_csv(path: Path, rows: Sequence[Tuple[str, int]]) -> None:
    """The len_for_bucket table: rows sorted by length (longest first), pandas-style index column."""
    rows = sorted(rows, key=lambda r: (-r[1], r[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "file_path", "length", "label"])
        for index, (file_path, length) in enumerate(rows):
            writer.writerow([index, file_path, length, ""])


def write_char_dict(path: Path, texts: Sequence[str]) -> None:
    """char.dict in fairseq's '<symbol> <count>' format, SUPERB's symbol order, counts from this corpus."""
    counts = Counter()
    for text in texts:
        counts.update(text.replace(" ", "|"))
        counts["|"] += 1  # the recipe appends a final word boundary to every transcript
    unknown = sorted(set(counts) - set(CHARS))
    if unknown:
        raise ValueError(f"transcripts use characters outside the vocabulary: {unknown}")
    path.write_text("".join(f"{symbol} {counts[symbol]}\n" for symbol in CHARS))


def build(out: Path, speakers: int, chapters: int, utterances: int, seed: int, workers: int) -> Dict[str, int]:
    """Write the corpus, bucket tables and vocabulary under ``out``; return utterances per split."""
    require_tools("espeak-ng", "sox")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"output directory {out} is not empty; remove it or choose another")
    root = out / "LibriSpeech"
    items = plan_corpus(speakers, chapters, utterances, seed)
    jobs, transcripts = [], {}
    for split, speaker_id, chapter_id, utt, text in items:
        chapter_dir = root / split / str(speaker_id) / str(chapter_id)
        chapter_dir.mkdir(parents=True, exist_ok=True)
        utt_id = f"{speaker_id}-{chapter_id}-{utt:04d}"
        transcripts.setdefault(chapter_dir / f"{speaker_id}-{chapter_id}.trans.txt", []).append(f"{utt_id} {text}")
        speaker = Speaker.from_index(speaker_id)
        jobs.append((text, speaker, chapter_dir / f"{utt_id}.flac"))
    for path, lines in transcripts.items():
        path.write_text("\n".join(lines) + "\n")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: speak(job[0].lower(), job[1], job[2], rate=SAMPLE_RATE), jobs))
    counts = {}
    for split in SPLITS:
        rows = [(str(p.relative_to(root)), flac_frames(p)) for p in sorted((root / split).rglob("*.flac"))]
        write_bucket_csv(out / "len_for_bucket" / f"{split}.csv", rows)
        counts[split] = len(rows)
    write_char_dict(out / "char.dict", [text for *_, text in items])
    return counts


def asr_overrides(out: Path) -> str:
    """The run_downstream.py -o string pointing s3prl's asr recipe at a corpus made by this tool."""
    out = Path(out)
    return (f"config.downstream_expert.datarc.libri_root={out / 'LibriSpeech'},,"
            f"config.downstream_expert.datarc.bucket_file={out / 'len_for_bucket'},,"
            f"config.downstream_expert.datarc.dict_path={out / 'char.dict'}")


CORPUS_OPTIONS = (option("--speakers", type=int, default=2, help="speakers per split"),
                  option("--chapters", type=int, default=1, help="chapters per speaker"),
                  option("--utterances", type=int, default=4, help="utterances per chapter"),
                  option("--seed", type=int, default=0, help="seed of the sentence generator"), WORKERS)


def _report(args, counts: Dict[str, int]) -> List[str]:
    """What was written, and the -o string of the asr recipe."""
    return [f"wrote {args.out}: " + ", ".join(f"{k} {v} utterances" for k, v in counts.items()),
            f"run_downstream.py -o \"{asr_overrides(args.out)}\""]


LAYOUT = Layout(name="librispeech", description=__doc__, options=CORPUS_OPTIONS, report=_report,
                write=lambda a: build(a.out, a.speakers, a.chapters, a.utterances, a.seed, a.workers))
