"""The model as data: phases, themes, KLIK tasks, glossary, municipalities, sentences and catalogs.

`load_content()` reads and validates everything once at start-up; a bad file stops start-up with a
`ContentError` that names the file and the field.
"""
from content.loader import ContentError, load_content
from content.schema import Content, Municipality, Phase, Source, Task, Term, Text, Theme

__all__ = ["Content", "ContentError", "Municipality", "Phase", "Source", "Task", "Term", "Text", "Theme", "load_content"]
