from django import template

register = template.Library()


@register.filter
def euros(cents) -> str:
    """1234 → "12,34 €" (French notation, non-breaking space before the sign)."""
    if cents is None:
        return ""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", "\u202f") + f",{rest:02d}\u00a0€"
