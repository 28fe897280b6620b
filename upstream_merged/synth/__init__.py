"""Deterministic synthetic audio: espeak-ng speech (speech.py), music (music.py) and audio events (events.py)."""
