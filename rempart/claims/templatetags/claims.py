"""Template filters of the claims pages: reason codes as labels in the reader's language, invoiceable PECs."""

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from rempart.claims import portal
from rempart.claims.reasons import label
from rempart.registry.models import CareDomain

register = template.Library()


@register.filter
def reason_label(code: str) -> str:
    return label(code, get_language() or "fr")


@register.filter
def reason_labels(codes) -> list[str]:
    """Stored codes → their labels, each once, in order."""
    language = get_language() or "fr"
    return list(dict.fromkeys(label(code, language) for code in codes or ()))


@register.filter
def domain_label(code: str) -> str:
    try:
        return str(CareDomain(code).label)
    except ValueError:
        return code


@register.filter
def invoiceable(pec) -> bool:
    """Offer *Facturer cette prise en charge* (the invoice page checks it again)."""
    return portal.invoiceable(pec, timezone.localdate())
