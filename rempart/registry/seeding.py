"""Fill the registry with synthetic data, going through the same import path as insurers' files."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from rempart.lib.progress import progress_bar
from rempart.registry import synthetic
from rempart.registry.models import Insurer, Professional
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import import_rights


@dataclass
class GenerationResult:
    insurers: int = 0
    beneficiaries: int = 0
    professionals: int = 0
    files: list[Path] | None = None


def ensure_insurer(spec: synthetic.InsurerSpec) -> Insurer:
    insurer, _ = Insurer.objects.get_or_create(
        amc_number=spec.amc_number,
        defaults={
            "name": spec.name,
            "kind": spec.kind,
            "dpo_name": f"Délégué à la protection des données — {spec.name}",
            "dpo_email": spec.dpo_email,
        },
    )
    return insurer


def write_files(
    out_dir: Path, seed: int, beneficiaries: int, today: dt.date, show_progress=None
) -> list[Path]:
    """Write, per insurer, a products file and a rights file (format v1) without touching the database."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    specs = synthetic.plan_insurers(seed, beneficiaries)
    with progress_bar(beneficiaries, "generate rights files", unit="rows", enabled=show_progress) as bar:
        for spec in specs:
            (out_dir / f"products-{spec.amc_number}.csv").write_text(
                synthetic.products_file_text(spec.amc_number), encoding="utf-8"
            )
            path = out_dir / f"rights-{spec.amc_number}.csv"
            bar.update(synthetic.write_rights_file(path, spec, seed, today))
            paths.append(path)
    return paths


def populate(
    seed: int, beneficiaries: int, *, show_progress=None, today: dt.date | None = None
) -> GenerationResult:
    """Create insurers, products, beneficiaries (through the importer) and professionals."""
    today = today or timezone.localdate()
    result = GenerationResult()
    with tempfile.TemporaryDirectory(prefix="rempart-gen-") as tmp:
        files = write_files(Path(tmp), seed, beneficiaries, today, show_progress)
        for spec, path in zip(synthetic.plan_insurers(seed, beneficiaries), files, strict=True):
            insurer = ensure_insurer(spec)
            products = import_products(Path(tmp) / f"products-{spec.amc_number}.csv", insurer)
            if products.errors:
                raise RuntimeError(f"synthetic products file rejected:\n{products.as_text()}")
            _run, summary = import_rights(
                path, insurer, mode="full", force=True, show_progress=show_progress, today=today
            )
            if summary.rejected:
                raise RuntimeError(f"synthetic rights file rejected rows, see {_run.report_dir}")
            result.beneficiaries += summary.created + summary.updated + summary.unchanged
            result.insurers += 1
    result.professionals = create_professionals(seed, max(20, beneficiaries // 500))
    return result


def create_professionals(seed: int, count: int) -> int:
    existing = set(Professional.objects.values_list("finess", flat=True))
    batch = []
    for spec in synthetic.professionals(seed, count):
        if spec.finess in existing:
            continue
        existing.add(spec.finess)
        professional = Professional(
            finess=spec.finess,
            siret=spec.siret,
            name=spec.name,
            domains=spec.domains,
            address=spec.address,
            postal_code=spec.postal_code,
            city=spec.city,
            bic=spec.bic,
            networks=spec.networks,
        )
        professional.set_iban(spec.iban)
        batch.append(professional)
    with transaction.atomic():
        Professional.objects.bulk_create(batch, batch_size=2000)
    return len(batch)


DEMO_ADHERENT = "DEMO-0001"


def demo_family(insurer: Insurer, today: dt.date) -> list[dict[str, str]]:
    """A known synthetic family for trying the counter page: imported like any rights file; card data returned.

    Demo only: these identifiers are synthetic (valid keys, no real person) and printed on purpose.
    """
    from rempart.lib.identifiers import nir_check_key
    from rempart.registry import rights_format as fmt

    parent = "2850575123456"
    parent_nir = parent + nir_check_key(parent)
    start, end = f"{today.year - 2}-01-01", f"{today.year}-12-31"
    contract = [insurer.amc_number, DEMO_ADHERENT, "CONF", start, end, "active"]
    rows = [
        [*contract, "1", "ASSURE", "Démo", "Camille", "F", "1985-05-12", "1", parent_nir, "", start, end],
        [*contract, "2", "ENFANT", "Démo", "Jules", "M", "2016-09-03", "1", "", parent_nir, start, end],
    ]
    with tempfile.TemporaryDirectory(prefix="rempart-demo-") as tmp:
        path = Path(tmp) / "demo-family.csv"
        lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
        path.write_text("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n", encoding="utf-8")
        import_rights(path, insurer, mode="delta", show_progress=False, today=today)
    return [
        {"who": "Camille (assurée)", "amc": insurer.amc_number, "adherent": DEMO_ADHERENT, "nir": parent_nir,
         "birth_date": "12/05/1985", "rank": "1"},
        {"who": "Jules (enfant, sur la carte Vitale du parent)", "amc": insurer.amc_number, "adherent": DEMO_ADHERENT,
         "nir": parent_nir, "birth_date": "03/09/2016", "rank": "1"},
    ]  # fmt: skip
