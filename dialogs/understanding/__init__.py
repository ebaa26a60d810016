"""Understanding what a message asks for: utterance -> intent + slots, and whether to act or ask first.

The pieces, in the order a message meets them: utterance (words, padding, kind of sentence), entities
(names, dates, numbers, people), template_reader (precise commands), features + classifier (everything else),
slots (the values a reading takes), decide (the safety rules), and pipeline, which puts them together. The words they rely on are data:
content/sentences/<lang>/ (words.yaml, templates.yaml, examples.yaml) and content/intents.yaml.
"""
from dialogs.understanding.names import Lookup, NameIndex
from dialogs.understanding.pipeline import Understander
from dialogs.understanding.reading import Understanding

__all__ = ["Lookup", "NameIndex", "Understander", "Understanding"]
