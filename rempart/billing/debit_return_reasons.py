"""Why an insurer's bank returned a SEPA direct debit (ISO 20022 return reason codes of the SDD rulebooks).

The debtor here is the insurer, the creditor the operator: these labels are written from that side (the
professionals' transfers have their own table, ``payments/return_reasons.py``, where the debtor is the
operator). ``mandate`` says the reason puts the mandate or the insurer's account itself in doubt (no mandate,
account closed, debits blocked…): the treasury must check the contract before collecting again, so the alert
is critical. An unknown code is still a return (the bank took the money back): it is recorded, labelled as
unknown, and treated as a mandate reason (the safe reading). Labels are French msgids, translated like the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class DebitReturnReason:
    code: str
    iso_name: str
    label: Promise | str
    mandate: bool  # the mandate or the account is in doubt: check the contract before collecting again


_TABLE = [
    ("AC01", "IncorrectAccountNumber", _("IBAN de l'assureur incorrect"), True),
    ("AC04", "ClosedAccountNumber", _("Compte de l'assureur clôturé"), True),
    ("AC06", "BlockedAccount", _("Compte de l'assureur bloqué, ou prélèvements bloqués"), True),
    (
        "AC13",
        "InvalidDebtorAccountType",
        _("Type de compte de l'assureur invalide pour ce prélèvement"),
        True,
    ),
    ("AG01", "TransactionForbidden", _("Prélèvement interdit sur ce compte"), True),
    ("AG02", "InvalidBankOperationCode", _("Code d'opération bancaire invalide"), False),
    ("AM04", "InsufficientFunds", _("Provision insuffisante sur le compte de l'assureur"), False),
    ("AM05", "Duplication", _("Prélèvement en double"), False),
    ("BE05", "UnrecognisedInitiatingParty", _("Créancier non reconnu par la banque de l'assureur"), True),
    ("CNOR", "CreditorBankIsNotRegistered", _("Banque de l'opérateur non joignable"), False),
    ("DNOR", "DebtorBankIsNotRegistered", _("Banque de l'assureur non joignable"), False),
    ("FF01", "InvalidFileFormat", _("Format de fichier invalide"), False),
    ("MD01", "NoMandate", _("Pas de mandat valable"), True),
    (
        "MD02",
        "MissingMandatoryInformationInMandate",
        _("Informations du mandat manquantes ou erronées"),
        True,
    ),
    ("MD06", "RefundRequestByEndCustomer", _("Remboursement demandé par l'assureur"), False),
    ("MD07", "EndCustomerDeceased", _("Titulaire du compte disparu"), True),
    ("MS02", "NotSpecifiedReasonCustomerGenerated", _("Refusé par l'assureur (motif non précisé)"), False),
    ("MS03", "NotSpecifiedReasonAgentGenerated", _("Refusé par la banque (motif non précisé)"), False),
    ("RC01", "BankIdentifierIncorrect", _("BIC de la banque de l'assureur incorrect"), True),
    ("RR01", "MissingDebtorAccountOrIdentification", _("Compte ou identifiant de l'assureur manquant"), True),
    ("RR02", "MissingDebtorNameOrAddress", _("Nom ou adresse de l'assureur manquant"), False),
    ("RR03", "MissingCreditorNameOrAddress", _("Nom ou adresse de l'opérateur manquant"), False),
    ("RR04", "RegulatoryReason", _("Motif réglementaire"), True),
    (
        "SL01",
        "SpecificServiceOfferedByDebtorAgent",
        _("Refusé par un service de la banque de l'assureur"),
        True,
    ),
    ("FOCR", "FollowingCancellationRequest", _("Rendu après une demande d'annulation"), False),
    ("CUST", "RequestedByCustomer", _("Refusé à la demande de l'assureur"), False),
]
REASONS: dict[str, DebitReturnReason] = {
    code: DebitReturnReason(code, name, label, mandate) for code, name, label, mandate in _TABLE
}


def reason(code: str) -> DebitReturnReason:
    """The reason for a code; an unknown or missing one is described as such and counts as a mandate reason."""
    known = REASONS.get(code)
    if known is not None:
        return known
    if not code:
        return DebitReturnReason("", "", _("Motif non précisé par la banque"), True)
    return DebitReturnReason(code, "", _("Motif non répertorié"), True)


def label(code: str) -> str:
    """The reason in the active language, with its code: "Provision insuffisante … (AM04)"."""
    text = str(reason(code).label)
    return f"{text} ({code})" if code else text


def known(code: str) -> bool:
    return code in REASONS
