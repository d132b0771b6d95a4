"""ISO 20022 status reason codes of a rejected or returned transfer: what they mean and whose fault they are.

``account`` says the reason concerns the professional's account (closed, wrong, blocked, holder deceased…):
its IBAN is then marked failed and nothing more is paid to it until an owner gives a new one. The other
reasons are on the operator's side (its own account, its file, a duplicate): the amount is payable again and
the next run pays it to the same IBAN once the cause is fixed. A code that is not in this table, or a reason
the bank did not specify, counts as an account reason: pausing one professional's payments is the safe
mistake, paying a bad account again is not. Labels are French msgids, translated like the rest of the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ReturnReason:
    code: str
    iso_name: str  # the ISO 20022 external code set's name
    label: Promise | str
    account: bool  # the professional's account is at fault: its IBAN is marked failed


_TABLE = [
    ("AC01", "IncorrectAccountNumber", _("Numéro de compte incorrect"), True),
    ("AC02", "InvalidDebtorAccountNumber", _("Compte de l'opérateur (débiteur) invalide"), False),
    ("AC03", "InvalidCreditorAccountNumber", _("Numéro de compte du bénéficiaire invalide"), True),
    ("AC04", "ClosedAccountNumber", _("Compte clôturé"), True),
    ("AC05", "ClosedDebtorAccountNumber", _("Compte de l'opérateur (débiteur) clôturé"), False),
    ("AC06", "BlockedAccount", _("Compte bloqué"), True),
    ("AC13", "InvalidDebtorAccountType", _("Type de compte de l'opérateur invalide"), False),
    ("AG01", "TransactionForbidden", _("Opération interdite sur ce compte"), True),
    ("AG02", "InvalidBankOperationCode", _("Code d'opération bancaire invalide"), False),
    ("AM01", "ZeroAmount", _("Montant nul"), False),
    ("AM02", "NotAllowedAmount", _("Montant non autorisé"), False),
    ("AM04", "InsufficientFunds", _("Provision insuffisante sur le compte de l'opérateur"), False),
    ("AM05", "Duplication", _("Virement en double"), False),
    ("AM09", "WrongAmount", _("Montant erroné"), False),
    (
        "BE01",
        "InconsistenWithEndCustomer",
        _("Le titulaire du compte ne correspond pas au bénéficiaire"),
        True,
    ),
    ("BE04", "MissingCreditorAddress", _("Adresse du bénéficiaire manquante"), False),
    ("CNOR", "CreditorBankIsNotRegistered", _("Banque du bénéficiaire non joignable"), True),
    ("CUST", "RequestedByCustomer", _("Annulé à la demande de l'opérateur"), False),
    ("DNOR", "DebtorBankIsNotRegistered", _("Banque de l'opérateur non joignable"), False),
    ("DUPL", "DuplicatePayment", _("Virement en double"), False),
    ("ED05", "SettlementFailed", _("Échec du règlement interbancaire"), False),
    ("FF01", "InvalidFileFormat", _("Format de fichier invalide"), False),
    ("FOCR", "FollowingCancellationRequest", _("Rendu après une demande d'annulation"), False),
    ("MD07", "EndCustomerDeceased", _("Titulaire du compte décédé"), True),
    ("MS02", "NotSpecifiedReasonCustomerGenerated", _("Motif non précisé (bénéficiaire)"), True),
    ("MS03", "NotSpecifiedReasonAgentGenerated", _("Motif non précisé (banque)"), True),
    ("NARR", "Narrative", _("Motif en texte libre"), True),
    ("RC01", "BankIdentifierIncorrect", _("BIC incorrect"), True),
    (
        "RR01",
        "MissingDebtorAccountOrIdentification",
        _("Compte ou identifiant de l'opérateur manquant"),
        False,
    ),
    ("RR02", "MissingDebtorNameOrAddress", _("Nom ou adresse de l'opérateur manquant"), False),
    ("RR03", "MissingCreditorNameOrAddress", _("Nom ou adresse du bénéficiaire manquant"), False),
    ("RR04", "RegulatoryReason", _("Motif réglementaire"), True),
    (
        "SL01",
        "SpecificServiceOfferedByDebtorAgent",
        _("Service particulier de la banque de l'opérateur"),
        False,
    ),
    ("TM01", "CutOffTime", _("Reçu après l'heure limite"), False),
]
REASONS: dict[str, ReturnReason] = {
    code: ReturnReason(code, name, label, account) for code, name, label, account in _TABLE
}


def reason(code: str) -> ReturnReason:
    """The reason for a code; an unknown or missing code is described as such and counts as an account reason."""
    known = REASONS.get(code)
    if known is not None:
        return known
    if not code:
        return ReturnReason("", "", _("Motif non précisé"), True)
    return ReturnReason(code, "", _("Motif %(code)s (code ISO 20022)") % {"code": code}, True)


def label(code: str) -> str:
    """The reason in the active language, with its code: "Compte clôturé (AC04)"."""
    text = str(reason(code).label)
    return f"{text} ({code})" if code in REASONS else text
