"""API errors that carry the field at fault, rendered as {"detail": …, "field": …} with a 400."""


class BadInput(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} : {message}")
        self.field = field
        self.message = message


class BadLines(BadInput):
    """Several problems, each with its line, field and message (a quote with bad lines)."""

    def __init__(self, field: str, message: str, errors: list[dict]) -> None:
        super().__init__(field, message)
        self.errors = errors
