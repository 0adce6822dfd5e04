"""The two ways the condition language says no.

``ConditionError`` is raised when a condition (or a JSON path) is saved: it must point at the
exact character so the form can show a caret under it. ``PathNotFound`` is raised only by the
public ``json_path`` helper; evaluation turns it into a failed verdict and never lets it out.
"""

from __future__ import annotations


class ConditionError(ValueError):
    """A condition that cannot be parsed; ``position`` is a 0-based index into ``text``."""

    def __init__(self, message: str, position: int, text: str = ""):
        self.message = message
        self.position = position
        self.text = text
        super().__init__(message, position)

    @property
    def caret(self) -> str:
        """The line that goes under the ``str()`` of the error, pointing at the character."""
        prefix = f"{self.message} at position {self.position}: "
        return " " * (len(prefix) + self.position) + "^"

    def __str__(self) -> str:
        head = f"{self.message} at position {self.position}: {self.text}"
        if "\n" in self.text:  # a caret under a multi-line text points nowhere useful
            return head
        return f"{head}\n{self.caret}"

    def __reduce__(self):  # pickles (django-q2 tasks) keep every field
        return (type(self), (self.message, self.position, self.text))


class PathNotFound(LookupError):
    """A JSON path that does not lead anywhere in this document; the message says where it stopped.

    ``path`` is the part of the path that was walked up to (and including) the step that failed,
    written the way a user writes it (``data.items[3]``).
    """

    def __init__(self, message: str, path: str = ""):
        self.message = message
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:
        return self.message
