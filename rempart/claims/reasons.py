"""The reason codes of claims adjudication: stable codes, stored with each claim, labelled when shown.

A code never changes meaning once released: practice software and insurers switch on it (like the
reason codes of a NOEMIE RSP return, or openIMIS's claim rejection reasons). The labels are French and
English here rather than in the gettext catalogue so that an API answer, a lot's result file and the
portal show the same words for the same code (:func:`label`). The table is documented in
docs/claims-cases.md (§ Reason codes); a test keeps the two identical.
"""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    """What a code says about the outcome."""

    REJECTION = "rejection"  # the line (or the whole invoice) is paid nothing
    REDUCTION = "reduction"  # the line is paid less than claimed
    REVIEW = "review"  # the invoice waits for an operator's decision
    INPUT = "input"  # the invoice is refused as bad input (ClaimInputError): nothing is decided


class Reason(enum.StrEnum):
    # ---- the invoice as a whole: every line is rejected with this code
    RIGHTS_CLOSED = "rights_closed"
    NO_CONVENTION = "no_convention"
    DOMAIN_NOT_IN_CONVENTION = "domain_not_in_convention"
    NO_TIERS_PAYANT = "no_tiers_payant"
    PEC_NOT_FOUND = "pec_not_found"
    PEC_OTHER_BENEFICIARY = "pec_other_beneficiary"
    PEC_REFUSED = "pec_refused"
    PEC_CANCELLED = "pec_cancelled"
    PEC_CONSUMED = "pec_consumed"
    PEC_EXPIRED = "pec_expired"
    # ---- one line rejected
    DUPLICATE = "duplicate"
    UNKNOWN_CODE = "unknown_code"
    CLASS_MISMATCH = "class_mismatch"
    NOT_IN_PEC = "not_in_pec"
    PEC_LINE_MISMATCH = "pec_line_mismatch"
    NO_AMC_SHARE = "no_amc_share"
    # ---- one line reduced (rejected when the limit is 0)
    REDUCED_TO_PEC = "reduced_to_pec"
    REDUCED_TO_GUARANTEE = "reduced_to_guarantee"
    PRICE_ABOVE_LIMIT = "price_above_limit"
    ACT_CEILING = "act_ceiling"
    YEARLY_CEILING = "yearly_ceiling"
    # ---- the invoice goes to an operator's review
    AMOUNT_ABOVE_THRESHOLD = "amount_above_threshold"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    AMO_NOT_PAID = "amo_not_paid"
    LATE_INVOICE = "late_invoice"
    GUARANTEE_REQUIRES_PEC = "guarantee_requires_pec"
    # ---- bad input (ClaimInputError), before the beneficiary is identified
    INVOICE_NUMBER_INVALID = "invoice_number_invalid"
    DOMAIN_UNKNOWN = "domain_unknown"
    DATE_INVALID = "date_invalid"
    CARE_DATE_IN_FUTURE = "care_date_in_future"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    PRESCRIBER_MISSING = "prescriber_missing"
    PRESCRIBER_INVALID = "prescriber_invalid"
    PEC_NUMBER_MISSING = "pec_number_missing"
    PEC_NUMBER_INVALID = "pec_number_invalid"
    PEC_NUMBER_UNEXPECTED = "pec_number_unexpected"
    LINES_INVALID = "lines_invalid"
    CODE_SYSTEM_INVALID = "code_system_invalid"
    CODE_INVALID = "code_invalid"
    LPP_CLASS_INVALID = "lpp_class_invalid"
    SIDE_INVALID = "side_invalid"
    QUANTITY_INVALID = "quantity_invalid"
    AMOUNT_INVALID = "amount_invalid"
    AMO_ABOVE_LIMIT = "amo_above_limit"
    CLAIMED_ABOVE_REMAINDER = "claimed_above_remainder"
    TOTALS_MISMATCH = "totals_mismatch"
    NOTHING_CLAIMED = "nothing_claimed"


R, K = Reason, Kind

#: code → (kind, French label, English label). Labels are short: the explanation gives the figures.
TABLE: dict[Reason, tuple[Kind, str, str]] = {
    R.RIGHTS_CLOSED: (
        K.REJECTION,
        "Droits non ouverts à la date des soins",
        "Rights not open on the care date",
    ),
    R.NO_CONVENTION: (
        K.REJECTION,
        "Pas de convention de tiers payant en vigueur pour le professionnel",
        "No tiers payant agreement in force for the professional",
    ),
    R.DOMAIN_NOT_IN_CONVENTION: (
        K.REJECTION,
        "Domaine de soins hors de la convention du professionnel",
        "Care domain outside the professional's agreement",
    ),
    R.NO_TIERS_PAYANT: (
        K.REJECTION,
        "Pas de tiers payant pour ce domaine de soins",
        "No tiers payant for this care domain",
    ),
    R.PEC_NOT_FOUND: (K.REJECTION, "Prise en charge introuvable", "Prior approval not found"),
    R.PEC_OTHER_BENEFICIARY: (
        K.REJECTION,
        "Prise en charge accordée pour un autre bénéficiaire",
        "Prior approval granted for another beneficiary",
    ),
    R.PEC_REFUSED: (K.REJECTION, "Prise en charge refusée", "Prior approval refused"),
    R.PEC_CANCELLED: (K.REJECTION, "Prise en charge annulée", "Prior approval cancelled"),
    R.PEC_CONSUMED: (
        K.REJECTION,
        "Prise en charge déjà facturée",
        "Prior approval already invoiced",
    ),
    R.PEC_EXPIRED: (
        K.REJECTION,
        "Prise en charge expirée à la date des soins",
        "Prior approval expired on the care date",
    ),
    R.DUPLICATE: (
        K.REJECTION,
        "Acte déjà facturé et accepté (même code, même date, même montant)",
        "Already invoiced and accepted (same code, date and amount)",
    ),
    R.UNKNOWN_CODE: (
        K.REJECTION,
        "Code inconnu du catalogue à la date des soins",
        "Code not in the catalogue on the care date",
    ),
    R.CLASS_MISMATCH: (
        K.REJECTION,
        "Classe différente de celle du code au catalogue",
        "Class differs from the code's class in the catalogue",
    ),
    R.NOT_IN_PEC: (K.REJECTION, "Ligne absente de la prise en charge", "Line not in the prior approval"),
    R.PEC_LINE_MISMATCH: (
        K.REJECTION,
        "Ligne différente de la prise en charge (classe ou quantité)",
        "Line differs from the prior approval (class or quantity)",
    ),
    R.NO_AMC_SHARE: (
        K.REJECTION,
        "La garantie ne prévoit aucune part complémentaire pour cette ligne",
        "The guarantee gives no complementary share for this line",
    ),
    R.REDUCED_TO_PEC: (
        K.REDUCTION,
        "Ramené au montant de la prise en charge",
        "Reduced to the prior approval's amount",
    ),
    R.REDUCED_TO_GUARANTEE: (
        K.REDUCTION,
        "Ramené au montant de la garantie",
        "Reduced to the guarantee's amount",
    ),
    R.PRICE_ABOVE_LIMIT: (
        K.REDUCTION,
        "Prix au-dessus du prix limite de vente : part complémentaire calculée au prix limite",
        "Price above the price limit: complementary share computed at the limit",
    ),
    R.ACT_CEILING: (K.REDUCTION, "Plafond par acte de la garantie", "The guarantee's ceiling per act"),
    R.YEARLY_CEILING: (K.REDUCTION, "Plafond annuel de la garantie", "The guarantee's yearly ceiling"),
    R.AMOUNT_ABOVE_THRESHOLD: (
        K.REVIEW,
        "Montant au-dessus du seuil d'examen",
        "Amount above the review threshold",
    ),
    R.POSSIBLE_DUPLICATE: (
        K.REVIEW,
        "Doublon possible : même code et même date déjà acceptés pour un autre montant",
        "Possible duplicate: same code and date already accepted for another amount",
    ),
    R.AMO_NOT_PAID: (
        K.REVIEW,
        "Part obligatoire nulle sur une ligne qui a une base de remboursement",
        "No compulsory share paid on a line with a reimbursement base",
    ),
    R.LATE_INVOICE: (
        K.REVIEW,
        "Facture reçue longtemps après les soins",
        "Invoice received long after the care",
    ),
    R.GUARANTEE_REQUIRES_PEC: (
        K.REVIEW,
        "La garantie exige une prise en charge préalable hors de Rempart",
        "The guarantee requires a prior approval outside Rempart",
    ),
    R.INVOICE_NUMBER_INVALID: (K.INPUT, "Numéro de facture invalide", "Invalid invoice number"),
    R.DOMAIN_UNKNOWN: (K.INPUT, "Domaine de soins inconnu", "Unknown care domain"),
    R.DATE_INVALID: (K.INPUT, "Date invalide ou incohérente", "Invalid or inconsistent date"),
    R.CARE_DATE_IN_FUTURE: (K.INPUT, "Date des soins dans le futur", "Care date in the future"),
    R.TIME_LIMIT_EXCEEDED: (
        K.INPUT,
        "Délai de facturation dépassé",
        "Invoicing time limit exceeded",
    ),
    R.PRESCRIBER_MISSING: (
        K.INPUT,
        "Prescripteur requis pour ce domaine",
        "Prescriber required for this domain",
    ),
    R.PRESCRIBER_INVALID: (K.INPUT, "Numéro RPPS du prescripteur invalide", "Invalid prescriber RPPS number"),
    R.PEC_NUMBER_MISSING: (
        K.INPUT,
        "Numéro de prise en charge requis pour ce domaine",
        "Prior approval number required for this domain",
    ),
    R.PEC_NUMBER_INVALID: (K.INPUT, "Numéro de prise en charge invalide", "Invalid prior approval number"),
    R.PEC_NUMBER_UNEXPECTED: (
        K.INPUT,
        "Pas de prise en charge pour ce domaine",
        "No prior approval in this domain",
    ),
    R.LINES_INVALID: (
        K.INPUT,
        "Lignes absentes, trop nombreuses ou mal numérotées",
        "Lines missing, too many or misnumbered",
    ),
    R.CODE_SYSTEM_INVALID: (
        K.INPUT,
        "Système de codes inconnu ou non admis pour ce domaine",
        "Code system unknown or not allowed for this domain",
    ),
    R.CODE_INVALID: (K.INPUT, "Code mal formé", "Malformed code"),
    R.LPP_CLASS_INVALID: (K.INPUT, "Classe LPP invalide", "Invalid LPP class"),
    R.SIDE_INVALID: (K.INPUT, "Côté invalide", "Invalid side"),
    R.QUANTITY_INVALID: (K.INPUT, "Quantité invalide", "Invalid quantity"),
    R.AMOUNT_INVALID: (K.INPUT, "Montant invalide", "Invalid amount"),
    R.AMO_ABOVE_LIMIT: (
        K.INPUT,
        "Part obligatoire supérieure au prix ou à la base de remboursement",
        "Compulsory share above the price or the reimbursement base",
    ),
    R.CLAIMED_ABOVE_REMAINDER: (
        K.INPUT,
        "Montant demandé supérieur au prix moins la part obligatoire",
        "Amount claimed above the price minus the compulsory share",
    ),
    R.TOTALS_MISMATCH: (
        K.INPUT,
        "Totaux différents de la somme des lignes",
        "Totals differ from the sum of the lines",
    ),
    R.NOTHING_CLAIMED: (
        K.INPUT,
        "Aucun montant demandé à la complémentaire",
        "Nothing claimed from the complementary insurer",
    ),
}

#: The shape the lead's interface names: code → (French label, English label).
REASONS: dict[str, tuple[str, str]] = {str(code): (fr, en) for code, (_, fr, en) in TABLE.items()}
KINDS: dict[str, Kind] = {str(code): kind for code, (kind, _, _) in TABLE.items()}


def label(code: str, language: str = "fr") -> str:
    """The label of a stored code in the reader's language (``fr`` or ``en``; ``en-gb`` reads as ``en``).

    An unknown code (a newer release's, read by an older one) is shown as itself rather than failing.
    """
    labels = REASONS.get(code)
    if labels is None:
        return code
    return labels[1] if language.lower().startswith("en") else labels[0]


def kind(code: str) -> Kind | None:
    return KINDS.get(code)
