"""Synthetic, deterministic registry data with valid identifiers: never real people.

Everything derives from one seed: the same seed and size give byte-identical files. Each insurer
has its own random stream, so files can be produced independently and streamed at any scale.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

from schwifty import IBAN
from stdnum import luhn

from rempart.lib.identifiers import finess_check_digit, nir_check_key
from rempart.registry import products_import as products_fmt
from rempart.registry import rights_format as rights_fmt

SURNAMES = (
    (
        "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefebvre Leroy Roux "
        "David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller Lefevre Faure "
        "Andre Mercier Blanc Guerin Boyer Garnier Chevalier Francois Legrand Gauthier Garcia Perrin Robin Clement "
        "Morin Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noel Meyer "
        "Dufour Meunier Brun Blanchard Giraud Joly Riviere Lucas Brunet Gaillard Barbier Arnaud Martinez Gerard "
        "Roche Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix "
        "Olivier Philippe Bourgeois Pierre Benoit Rey Leclerc Payet Rolland Leclercq Guillaume Lecomte Lopez Jean "
        "Dupuy Guillot Hubert Berger Carpentier Sanchez Dupuis Moulin Louis Deschamps Huet Vasseur Perez Boucher "
        "Fleury Royer Klein Jacquet Adam Paris Poirier Marty Aubry Guyot Carre Charles Renault Charpentier Menard "
        "Maillard Baron Bertin Bailly Herve Schneider Fernandez Le\u00a0Gall Collet Leger Bouvier Julien Prevost "
        "Millet Perrot Daniel Le\u00a0Roux Cousin Germain Breton Besson Langlois Remy Le\u00a0Goff Pelletier Leveque "
        "Perrier Leblanc Barre Lebrun Marchal Weber Mallet Hamon Boulanger Jacob Monnier Michaud Rodriguez Guichard "
        "Gillet Etienne Grondin Poulain Tessier Chevallier Collin Chauvin Da\u00a0Silva Bouchet Gay Lemaitre Benard"
    )
    .replace("\u00a0", "_")
    .split()
)
SURNAMES = tuple(name.replace("_", " ") for name in SURNAMES)
MALE_NAMES = tuple(
    "Jean Pierre Michel Andre Philippe Rene Louis Alain Jacques Bernard Marcel Daniel Roger Robert Paul Claude "
    "Christian Henri Georges Nicolas Francois Patrick Gerard Christophe Joseph Julien Maurice Laurent Frederic "
    "Eric David Stephane Pascal Sebastien Alexandre Thierry Olivier Thomas Antoine Lucas Hugo Nathan Louis Enzo "
    "Gabriel Jules Arthur Raphael Leo Adam Mathis Tom Noah Ethan Timeo Sacha Maxime Theo Mohamed Yanis Rayan "
    "Valentin Quentin Romain Guillaume Kevin Florian Adrien Benjamin Bruno Didier Dominique Serge Yves Lucien".split()
)
FEMALE_NAMES = tuple(
    "Marie Jeanne Francoise Monique Catherine Nathalie Isabelle Jacqueline Anne Sylvie Martine Madeleine Nicole "
    "Suzanne Helene Christine Marguerite Denise Louise Christiane Yvonne Valerie Sophie Sandrine Stephanie "
    "Celine Julie Aurelie Camille Emma Lea Chloe Manon Ines Jade Lina Louise Alice Rose Anna Mila Ambre Julia "
    "Zoe Lola Clara Sarah Lucie Pauline Laura Marion Elodie Audrey Emilie Melanie Caroline Virginie Veronique "
    "Brigitte Chantal Annie Michele Colette Odette Josiane Therese Simone Agnes Claire Charlotte Juliette".split()
)
INSURER_WORDS = (
    "des Tilleuls",
    "du Val de Loire",
    "des Trois Rivières",
    "du Littoral",
    "des Cévennes",
    "de l'Estuaire",
    "des Artisans",
    "des Enseignants du Sud",
    "du Bocage",
    "des Cheminots de l'Est",
    "des Volcans",
    "de la Garonne",
    "des Hauts Plateaux",
    "du Pays Basque",
    "des Marais",
    "de la Côte d'Opale",
    "des Vignerons",
    "du Jura",
    "des Forges",
    "des Pêcheurs",
    "de la Vallée Verte",
    "des Sapeurs",
    "des Lavandes",
    "du Vexin",
)
INSURER_KINDS = (
    ("mutuelle", "Mutuelle"),
    ("prevoyance", "Institution de prévoyance"),
    ("assureur", "Assurances"),
)
DEPARTMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"]
PROFESSIONAL_KINDS = (
    ("Optique", ["OPTI"], 30),
    ("Audition", ["AUDI"], 10),
    ("Pharmacie", ["PHAR"], 35),
    ("Laboratoire", ["LABO"], 8),
    ("Cabinet dentaire", ["DENT"], 10),
    ("Centre hospitalier", ["HOSP", "MEDE", "RADL", "LABO"], 3),
    ("Centre de radiologie", ["RADL"], 4),
)
NETWORKS = ("Kalixia", "Santéclair", "Itelis", "Carte Blanche", "Sévéane")
BANKS = (("30004", "BNPAFRPP"), ("30003", "SOGEFRPP"), ("30002", "CRLYFRPP"), ("20041", "PSSTFRPP"))


@dataclass(frozen=True)
class InsurerSpec:
    index: int
    amc_number: str
    name: str
    kind: str
    dpo_email: str
    beneficiaries: int


def plan_insurers(seed: int, beneficiaries: int) -> list[InsurerSpec]:
    """A few big insurers and a long tail, like the market (3 for tests, up to 80 at national scale)."""
    rng = random.Random(f"{seed}-insurers")
    count = max(3, min(80, beneficiaries // 10_000))
    weights = [1 / (i + 1) ** 0.8 for i in range(count)]
    total = sum(weights)
    shares = [int(beneficiaries * w / total) for w in weights]
    shares[0] += beneficiaries - sum(shares)
    used: set[str] = set()
    specs = []
    for index, share in enumerate(shares):
        kind, prefix = INSURER_KINDS[index % 3 if index else 0]
        amc = f"{rng.randint(1, 95):02d}{rng.randint(0, 9_999_999):07d}"
        while amc in used:
            amc = f"{rng.randint(1, 95):02d}{rng.randint(0, 9_999_999):07d}"
        used.add(amc)
        word = INSURER_WORDS[index % len(INSURER_WORDS)]
        suffix = f" {index // len(INSURER_WORDS) + 1}" if index >= len(INSURER_WORDS) else ""
        specs.append(
            InsurerSpec(
                index=index,
                amc_number=amc,
                name=f"{prefix} {word}{suffix}",
                kind=kind,
                dpo_email=f"dpo@amc-{amc}.example",
                beneficiaries=share,
            )
        )
    return specs


# ---------------------------------------------------------------------------------------------- products

PRODUCT_LEVELS = (
    # code, label, responsible, rate for soins courants, optics/dental multiplier
    ("ESS", "Essentiel", True, 100, 1.0),
    ("CONF", "Confort", True, 200, 1.5),
    ("PREM", "Premium hors responsable", False, 300, 2.5),
)
OPTI_RESPONSIBLE = {  # contrat responsable floors and ceilings in euros (CSS art. R871-2, in force since 2020)
    "frame_max": 100, "simple_simple_min": 50, "simple_simple_max": 420, "simple_complex_min": 125,
    "simple_complex_max": 560, "simple_very_complex_min": 125, "simple_very_complex_max": 610,
    "complex_complex_min": 200, "complex_complex_max": 700, "complex_very_complex_min": 200,
    "complex_very_complex_max": 750, "very_complex_very_complex_min": 200, "very_complex_very_complex_max": 800,
}  # fmt: skip
GUARANTEE_SOURCE = "synthetic; contrat responsable figures: CSS art. R871-2 (verify)"


def product_rows(effective_from: dt.date = dt.date(2020, 1, 1)) -> Iterator[list[str]]:
    for code, label, responsible, rate, factor in PRODUCT_LEVELS:
        for domain in (
            "PHAR",
            "MEDE",
            "LABO",
            "RADL",
            "AUXI",
            "DENT",
            "OPTI",
            "AUDI",
            "HOSP",
            "TRAN",
            "SAGE",
        ):
            tp_code, pec, ceilings = str(rate if domain != "PHAR" else 100), "N", ""
            if domain in ("OPTI", "AUDI", "HOSP"):
                tp_code, pec = "PEC", "O"
            if domain == "OPTI":
                table = (
                    OPTI_RESPONSIBLE if responsible else {k: v * factor for k, v in OPTI_RESPONSIBLE.items()}
                )
                ceilings = "|".join(f"{k}={v:.2f}" for k, v in table.items())
            elif domain == "AUDI":
                ceilings = f"per_ear_max_with_amo={1700 * (1 if responsible else factor):.2f}"
            elif domain == "DENT":
                ceilings = f"prosthesis_max={300 * factor:.2f}|yearly_max={1000 * factor:.2f}"
            yield [
                code, f"{label}", "O" if responsible else "N", domain, effective_from.isoformat(), tp_code,
                str(rate), "", pec, ceilings, GUARANTEE_SOURCE,
            ]  # fmt: skip


def products_file_text(amc_number: str) -> str:
    rows = list(product_rows())
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow([products_fmt.MAGIC, products_fmt.VERSION, amc_number])
    writer.writerow(products_fmt.COLUMNS)
    writer.writerows(rows)
    writer.writerow(["#end", len(rows)])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- people


def make_nir(rng: random.Random, sex: str, year: int, month: int | None, place: str | None = None) -> str:
    """A valid NIR for a sex and birth; ``place``: the 5 characters of department and commune to use
    (canaries borrow them from the insurer's own people), else a random department."""
    if month is None:  # born abroad, month unknown: department 99 and a month code for "unknown"
        body = (
            f"{'1' if sex == 'M' else '2'}{year % 100:02d}20"
            f"99{rng.randint(100, 450):03d}{rng.randint(1, 999):03d}"
        )
    else:
        place = place or f"{rng.choice(DEPARTMENTS)}{rng.randint(1, 990):03d}"
        body = f"{'1' if sex == 'M' else '2'}{year % 100:02d}{month:02d}{place}{rng.randint(1, 999):03d}"
    return body + nir_check_key(body)


def _birth(rng: random.Random, today: dt.date, min_age: int, max_age: int, lunar_rate: float):
    year = today.year - rng.randint(min_age, max_age)
    if rng.random() < lunar_rate:
        return year, None, None
    month = rng.randint(1, 12)
    return year, month, rng.randint(1, 28)


def beneficiary_rows(spec: InsurerSpec, seed: int, today: dt.date) -> Iterator[list[str]]:
    """Rows of the rights file for one insurer: families of beneficiaries, exactly spec.beneficiaries rows."""
    rng = random.Random(f"{seed}-{spec.amc_number}")
    produced = 0
    contract_no = 0
    products = [level[0] for level in PRODUCT_LEVELS]
    while produced < spec.beneficiaries:
        contract_no += 1
        adherent = f"{spec.index:02d}{contract_no:08d}"
        product = rng.choices(products, weights=(5, 4, 1))[0]
        start = dt.date(today.year - rng.randint(0, 12), rng.choice((1, 1, 1, 4, 7, 10)), 1)
        roll = rng.random()
        if roll < 0.94:
            status, end = "active", (dt.date(today.year, 12, 31) if rng.random() < 0.5 else None)
        elif roll < 0.96:
            status, end = "suspended", None
        else:
            status, end = "terminated", max(start, today - dt.timedelta(days=rng.randint(1, 700)))
        contract = [
            spec.amc_number,
            adherent,
            product,
            start.isoformat(),
            end.isoformat() if end else "",
            status,
        ]
        for member in _family(rng, today):
            if produced >= spec.beneficiaries:
                break
            member_no, quality, last, first, sex, (y, m, d), rank, nir, od_nir = member
            birth_day = dt.date(y, m or 1, d or 1)
            coverage_start = max(start, birth_day)
            if end and coverage_start > end:
                continue  # born after the contract ended: never covered by it
            produced += 1
            yield [
                *contract, str(member_no), quality, last, first, sex, f"{y:04d}-{m or 0:02d}-{d or 0:02d}",
                str(rank), nir, od_nir, coverage_start.isoformat(), end.isoformat() if end else "",
            ]  # fmt: skip


def _family(rng: random.Random, today: dt.date) -> list[tuple]:
    last = rng.choice(SURNAMES)
    sex = rng.choice("MF")
    birth = _birth(rng, today, 18, 88, lunar_rate=0.005)
    principal_nir = make_nir(rng, sex, birth[0], birth[1])
    first = rng.choice(MALE_NAMES if sex == "M" else FEMALE_NAMES)
    members = [(1, "ASSURE", last, first, sex, birth, 1, principal_nir, "")]
    age = today.year - birth[0]
    if 22 <= age <= 85 and rng.random() < 0.55:
        other = "F" if sex == "M" or rng.random() < 0.05 else "M"
        spouse_birth = _birth(rng, today, max(18, age - 8), min(95, age + 8), lunar_rate=0.005)
        spouse_nir = make_nir(rng, other, spouse_birth[0], spouse_birth[1])
        spouse_first = rng.choice(MALE_NAMES if other == "M" else FEMALE_NAMES)
        members.append((2, "CONJOINT", last, spouse_first, other, spouse_birth, 1, spouse_nir, ""))
    if 22 <= age <= 60:
        children = rng.choices((0, 1, 2, 3, 4), weights=(40, 22, 24, 11, 3))[0]
        twins_at = rng.randrange(children) if children >= 2 and rng.random() < 0.04 else -1
        previous = None
        for n in range(children):
            child_sex = rng.choice("MF")
            if n == twins_at + 1 and previous is not None:
                child_birth, rank = previous, 2
            else:
                child_birth, rank = _birth(rng, today, 0, min(25, age - 18), lunar_rate=0.0), 1
            previous = child_birth
            first = rng.choice(MALE_NAMES if child_sex == "M" else FEMALE_NAMES)
            own = today.year - child_birth[0] >= 16 or rng.random() < 0.4
            nir = make_nir(rng, child_sex, child_birth[0], child_birth[1]) if own else ""
            members.append(
                (len(members) + 1, "ENFANT", last, first, child_sex, child_birth, rank, nir,
                 "" if own else principal_nir)
            )  # fmt: skip
    return members


def write_rights_file(path, spec: InsurerSpec, seed: int, today: dt.date) -> int:
    """Write one insurer's rights file in format v1 and return its row count (streamed, bounded memory)."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(rights_fmt.magic_line(spec.amc_number) + "\n")
        handle.write(rights_fmt.header_line() + "\n")
        writer = csv.writer(handle, delimiter=rights_fmt.DELIMITER, lineterminator="\n")
        for row in beneficiary_rows(spec, seed, today):
            writer.writerow(row)
            count += 1
        handle.write(rights_fmt.trailer_line(count) + "\n")
    return count


# ---------------------------------------------------------------------------------------------- professionals


@dataclass(frozen=True)
class ProfessionalSpec:
    finess: str
    siret: str
    name: str
    domains: list[str]
    address: str
    postal_code: str
    city: str
    iban: str
    bic: str
    networks: list[str]


CITIES = (
    ("75011", "Paris"), ("69003", "Lyon"), ("13006", "Marseille"), ("31000", "Toulouse"), ("44000", "Nantes"),
    ("33000", "Bordeaux"), ("59000", "Lille"), ("67000", "Strasbourg"), ("35000", "Rennes"), ("34000", "Montpellier"),
    ("21000", "Dijon"), ("63000", "Clermont-Ferrand"), ("20000", "Ajaccio"), ("97400", "Saint-Denis"),
)  # fmt: skip
STREETS = (
    "rue de la République",
    "avenue Jean Jaurès",
    "place du Marché",
    "rue Victor Hugo",
    "boulevard Gambetta",
)


def professionals(seed: int, count: int) -> Iterator[ProfessionalSpec]:
    rng = random.Random(f"{seed}-professionals")
    kinds = [k for k in PROFESSIONAL_KINDS for _ in range(k[2])]
    for n in range(count):
        label, domains, _weight = kinds[rng.randrange(len(kinds))]
        postal_code, city = rng.choice(CITIES)
        dept = "2A" if postal_code.startswith("20") else postal_code[:2]
        first8 = f"{dept}{rng.randint(0, 999_999):06d}"
        siren8 = f"{rng.randint(10_000_000, 99_999_999)}"
        siren = siren8 + luhn.calc_check_digit(siren8)
        nic4 = f"{rng.randint(1, 9999):04d}"
        bank, bic = rng.choice(BANKS)
        iban = IBAN.generate(
            "FR",
            bank_code=bank,
            branch_code=f"{rng.randint(0, 99_999):05d}",
            account_code=f"{rng.randint(0, 10**11 - 1):011d}",
        )
        yield ProfessionalSpec(
            finess=first8 + finess_check_digit(first8),
            siret=siren + nic4 + luhn.calc_check_digit(siren + nic4),
            name=f"{label} {rng.choice(SURNAMES)} {n + 1}",
            domains=list(domains),
            address=f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
            postal_code=postal_code,
            city=city,
            iban=str(iban).replace(" ", ""),
            bic=bic,
            networks=rng.sample(NETWORKS, rng.randint(0, 2)),
        )
