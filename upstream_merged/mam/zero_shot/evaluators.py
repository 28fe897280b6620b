"""Zero-shot evaluators of a task-fine-tuned MAM target: WER / CER of a HubertForCTC, top-1 of a BEATs classifier."""
from __future__ import annotations

from typing import Callable, Dict, List

from upstream_merged.mam.zero_shot.data import Item, load_audio
from upstream_merged.mam.zero_shot.metrics import error_counts, normalise_transcript, vocabulary_charset
from upstream_merged.mam.loading import AttentionModel

ASR_KINDS = ("ljspeech", "vctk")

Evaluator = Callable[[List[Item]], Dict[str, float]]


def asr_evaluator(target: AttentionModel) -> Evaluator:
    """WER / CER of greedy CTC decoding, references normalised as the tokenizer's vocabulary implies."""
    from upstream_merged.mam.task_models import CTCModel, load_processor

    ctc = CTCModel(target.task_model, load_processor(target.path), target.path)
    charset = vocabulary_charset(ctc.vocabulary)

    def evaluate(items: List[Item]) -> Dict[str, float]:
        pairs = []
        for item in items:
            hypothesis = normalise_transcript(ctc.transcribe(load_audio(item.path)), charset)
            pairs.append((normalise_transcript(item.reference, charset), hypothesis))
        counts = error_counts(pairs)
        return {"wer": counts.wer, "cer": counts.cer, "word_errors": counts.word_errors, "words": counts.words,
                "char_errors": counts.char_errors, "chars": counts.chars, "utterances": len(items)}

    return evaluate


def classifier_evaluator(target: AttentionModel) -> Evaluator:
    """Top-1 accuracy / error of a fine-tuned BEATs classifier; labels matched by name (label_dict)."""
    classifier = target.task_model

    def evaluate(items: List[Item]) -> Dict[str, float]:
        unknown = sorted({i.reference for i in items} - set(classifier.labels))
        if unknown:
            raise ValueError(f"ESC-50 categories {unknown[:5]} are not among the classifier's labels "
                             f"{classifier.labels[:5]}...: the classifier was not fine-tuned on these classes")
        correct = sum(classifier.labels[classifier.predict(load_audio(item.path))] == item.reference for item in items)
        accuracy = correct / len(items) if items else 0.0
        return {"accuracy": accuracy, "error": 1.0 - accuracy, "correct": correct, "clips": len(items)}

    return evaluate


def make_evaluator(target: AttentionModel, kind: str) -> Evaluator:
    """The evaluator for a dataset kind; a target without the matching head is an error."""
    from upstream_merged.mam.task_models import head_kind

    head = head_kind(target.task_model)
    want = "ctc" if kind in ASR_KINDS else "classifier"
    if head != want:
        raise ValueError(f"{kind} needs a {'HubertForCTC' if want == 'ctc' else 'fine-tuned BEATs (predictor)'} "
                         f"target, but {target.path} is {'a bare encoder' if not head else 'a ' + head + ' model'}")
    return asr_evaluator(target) if want == "ctc" else classifier_evaluator(target)
