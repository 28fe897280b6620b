"""Corpus readers for s3prl's ``ctc`` downstream, which the PyPI s3prl wheel does not ship.

The plugin's import hook appends this package's parent directory to ``s3prl.downstream.ctc.__path__``
when the installed s3prl has no ``ctc/corpus`` of its own, so the stock ``ctc/data.py`` finds
``from .corpus.libriphone import LibriPhoneDataset`` (PR) and ``.corpus.snips`` (SF) here. The other
corpora of the repository (librispeech, common_voice) are not provided.
"""
