"""An attacker with a copy of the registry cannot find the canaries better than chance.

The attacker reads the tables as a dump gives them (no keys: NIRs are ciphertexts, but whether a person
has one, and which blind indexes are equal, shows), computes for every contract the features of the
attack report and a few more — adherent-number pattern, family shape, ages, product, dates, names,
lunar births, primary-key order, the import run each contract came in with (its name, mode, counts,
hour) — and looks for the canaries with every single feature (a decision stump at its best threshold
is the feature's AUC) and with a cross-validated logistic regression over all of them.

What the attacker can always learn is *when* canaries were planted (the canary table's dates, and so
the runs that carried them): the question is whether, among the contracts those runs created, the
canaries stand out. Statistical criterion: under "indistinguishable", the AUC of any score is 0.5 with
standard deviation σ = √((n₀ + n₁ + 1) / (12 n₀ n₁)) (Mann–Whitney); a feature finds the canaries when
|AUC − ½| > 3.5 σ (two-sided, Bonferroni over 43 features: family-wise false alarm ≈ 2 %), the
regression when AUC − ½ > 3 σ. The same attack on canaries planted the old way, and on well-drawn
canaries put at the end of the file instead of in number order, finds them (AUC > 0.9): the test has
the power to fail.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections import Counter, defaultdict

import pytest
from stdnum import luhn

from rempart.registry import rights_format as fmt
from rempart.registry.models import Beneficiary, Contract, ImportRun
from rempart.registry.rights_import import import_rights
from rempart.surveillance import canaries, canary_carrier
from rempart.surveillance.models import Canary
from rempart.surveillance.tests.canary_world import COL, TODAY, World, make_insurer

pytestmark = pytest.mark.django_db

FEATURE_Z = 3.5
MODEL_Z = 3.0
DELTAS = 30
NEW_PER_DELTA = 150  # beneficiaries: about 60 new contracts a day
CANARIES_PER_DELTA = 4


# --- the attacker's side: features from a copy of the tables ----------------------------------------------


def _serial(number: str) -> int:
    digits = re.sub(r"\D", "", number)
    return int(digits[:-1] or 0) if digits else 0


def registry_copy(insurer) -> dict[int, dict]:
    """Per contract: what a dump of registry_contract, registry_beneficiary and registry_importrun shows."""
    contracts = {
        c["id"]: {**c, "people": []}
        for c in Contract.objects.filter(insurer=insurer)
        .order_by("id")
        .values("id", "adherent_number", "product__code", "start_date", "end_date", "status")
    }
    for b in (
        Beneficiary.objects.filter(contract__insurer=insurer)
        .order_by("id")
        .values(
            "id", "contract_id", "member_number", "quality", "last_name", "first_name", "sex", "birth_year",
            "birth_month", "birth_day", "birth_rank", "nir_cipher", "nir_index", "od_nir_index",
            "coverage_start", "coverage_end",
        )
    ):  # fmt: skip
        contracts[b["contract_id"]]["people"].append(b)
    _attribute_runs(insurer, contracts)
    return contracts


def _attribute_runs(insurer, contracts: dict[int, dict]) -> None:
    """The attacker's reading of the import history: runs in order, each created ``counts.created``
    beneficiaries, which are the next ids; a contract belongs to the run of its first beneficiary."""
    runs = list(ImportRun.objects.filter(insurer=insurer, status="succeeded").order_by("started_at", "pk"))
    ids = sorted(b["id"] for c in contracts.values() for b in c["people"])
    owner, position = {}, 0
    for run in runs:
        for beneficiary_id in ids[position : position + run.counts.get("created", 0)]:
            owner[beneficiary_id] = run
        position += run.counts.get("created", 0)
    for contract in contracts.values():
        contract["run"] = owner.get(min(b["id"] for b in contract["people"])) if contract["people"] else None


def features(contracts: dict[int, dict]) -> dict[int, dict[str, float]]:
    people = [p for c in contracts.values() for p in c["people"]]
    surname_count = Counter(p["last_name"] for p in people)
    first_years: dict[str, list[int]] = defaultdict(list)
    for p in people:
        first_years[p["first_name"]].append(p["birth_year"])
    first_mean = {name: statistics.fmean(years) for name, years in first_years.items()}
    products = Counter(c["product__code"] for c in contracts.values())
    by_serial = sorted(contracts, key=lambda pk: _serial(contracts[pk]["adherent_number"]))
    serial_rank = {pk: i / len(by_serial) for i, pk in enumerate(by_serial)}
    serials = [_serial(contracts[pk]["adherent_number"]) for pk in by_serial]
    gaps = {
        pk: (
            serials[i] - serials[i - 1] if i else 0,
            serials[i + 1] - serials[i] if i + 1 < len(serials) else 0,
        )
        for i, pk in enumerate(by_serial)
    }
    ids = sorted(contracts)
    run_members: dict[int, list[int]] = defaultdict(list)
    for pk in ids:
        if contracts[pk]["run"] is not None:
            run_members[contracts[pk]["run"].pk].append(pk)
    name_shapes = Counter(re.sub(r"\d", "9", c["run"].file_name) for c in contracts.values() if c["run"])
    result = {}
    for index, pk in enumerate(ids):
        c = contracts[pk]
        members = c["people"]
        if not members:
            continue
        principal = next((p for p in members if p["quality"] == "A"), members[0])
        children = [p for p in members if p["quality"] == "E"]
        spouse = next((p for p in members if p["quality"] == "C"), None)
        number = c["adherent_number"]
        digits = re.sub(r"\D", "", number)
        own = _serial(number)
        previous = _serial(contracts[ids[index - 1]]["adherent_number"]) if index else own
        following = _serial(contracts[ids[index + 1]]["adherent_number"]) if index + 1 < len(ids) else own
        run = c["run"]
        in_run = run_members.get(run.pk, [pk]) if run else [pk]
        indexes = {bytes(p["nir_index"]) for p in members if p["nir_index"] is not None}
        bids = [p["id"] for p in members]
        end = c["end_date"]
        result[pk] = {
            # the adherent number
            "number_length": len(number),
            "number_prefix_MT": float(number.startswith("MT")),
            "number_luhn_valid": float(bool(digits) and luhn.is_valid(digits)),
            "number_serial_rank": serial_rank[pk],
            "number_gap_before": gaps[pk][0],
            "number_gap_after": gaps[pk][1],
            "number_last_digit": int(digits[-1]) if digits else -1,
            # primary keys and creation order
            "id_position_in_run": in_run.index(pk) / max(1, len(in_run) - 1),
            "id_order_inversion": float(own < previous or own > following),
            "id_beneficiaries_contiguous": float(max(bids) - min(bids) + 1 == len(bids)),
            "id_member_order": float(bids == sorted(bids)),
            # the run it came with
            "run_rows_read": run.counts.get("rows_read", 0) if run else 0,
            "run_created": run.counts.get("created", 0) if run else 0,
            "run_name_usual": name_shapes[re.sub(r"\d", "9", run.file_name)] / len(contracts) if run else 0,
            "run_delta": float(run.mode == "delta") if run else 0,
            "run_hour": run.started_at.hour if run else -1,
            # the family
            "family_size": len(members),
            "family_children": len(children),
            "family_spouse": float(spouse is not None),
            "family_member_numbers_contiguous": float(
                max(p["member_number"] for p in members) == len(members)
            ),
            "family_surnames": len({p["last_name"] for p in members}),
            "family_twins": float(any(p["birth_rank"] > 1 for p in members)),
            "family_without_own_nir": sum(p["nir_cipher"] is None for p in members),
            "family_od_in_contract": sum(
                p["od_nir_index"] is not None and bytes(p["od_nir_index"]) in indexes for p in members
            ),
            "family_od_outside": sum(
                p["od_nir_index"] is not None and bytes(p["od_nir_index"]) not in indexes for p in members
            ),
            "family_lunar": sum(p["birth_month"] is None for p in members),
            # ages and births
            "age_principal": TODAY.year - principal["birth_year"],
            "age_spouse_gap": (spouse["birth_year"] - principal["birth_year"]) if spouse else 0,
            "age_children_mean": statistics.fmean(TODAY.year - p["birth_year"] for p in children)
            if children
            else -1,
            "birth_day_principal": principal["birth_day"] or 0,
            "birth_month_principal": principal["birth_month"] or 0,
            "sex_principal_male": float(principal["sex"] == "M"),
            # product and dates
            "product_share": products[c["product__code"]] / len(contracts),
            "product_responsible": float(c["product__code"] != "PREM"),
            "start_days_ago": (TODAY - c["start_date"]).days,
            "start_day_of_month": c["start_date"].day,
            "end_kind": 0 if end is None else (1 if (end.month, end.day) == (12, 31) else 2),
            "status": {"active": 0, "suspended": 1, "terminated": 2}[c["status"]],
            "coverage_from_contract_start": sum(p["coverage_start"] == c["start_date"] for p in members)
            / len(members),
            "coverage_end_is_contract_end": sum(p["coverage_end"] == end for p in members) / len(members),
            # names
            "name_surname_frequency": surname_count[principal["last_name"]] / len(people),
            "name_first_name_frequency": len(first_years[principal["first_name"]]) / len(people),
            "name_first_name_age_fit": abs(first_mean[principal["first_name"]] - principal["birth_year"]),
        }
    return result


def canary_contracts(insurer) -> set[int]:
    tags = {bytes(t) for t in Canary.objects.filter(insurer=insurer).values_list("tag", flat=True)}
    return {
        contract_id
        for pk, contract_id in Beneficiary.objects.filter(contract__insurer=insurer).values_list(
            "pk", "contract_id"
        )
        if canaries.tag_of(pk) in tags
    }


# --- the statistics -----------------------------------------------------------------------------------------


def auc(scores: list[float], labels: list[bool]) -> float:
    """Mann–Whitney AUC (ties count half): P(score of a canary > score of a real contract)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    n1 = sum(labels)
    n0 = len(labels) - n1
    rank_sum = sum(r for r, label in zip(ranks, labels, strict=True) if label)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n0 * n1)


def null_sigma(labels: list[bool]) -> float:
    n1 = sum(labels)
    n0 = len(labels) - n1
    return math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))


def cross_validated_logistic_scores(
    rows: list[list[float]], labels: list[bool], folds: int = 5
) -> list[float]:
    """Held-out scores of an L2 logistic regression (gradient descent, standardised features)."""
    columns = list(zip(*rows, strict=True))
    means = [statistics.fmean(col) for col in columns]
    spreads = [statistics.pstdev(col) or 1.0 for col in columns]
    x = [[(v - m) / s for v, m, s in zip(row, means, spreads, strict=True)] for row in rows]
    rng = random.Random(0)
    fold_of = [rng.randrange(folds) for _ in rows]
    scores = [0.0] * len(rows)
    for fold in range(folds):
        train = [i for i in range(len(rows)) if fold_of[i] != fold]
        positives = sum(labels[i] for i in train)
        weight_pos = (len(train) - positives) / max(1, positives)  # balanced classes
        w = [0.0] * len(columns)
        bias = 0.0
        for _epoch in range(150):
            grad = [0.0] * len(columns)
            grad_bias = 0.0
            for i in train:
                z = bias + sum(a * b for a, b in zip(w, x[i], strict=True))
                p = 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
                error = (p - labels[i]) * (weight_pos if labels[i] else 1.0)
                grad_bias += error
                for k, value in enumerate(x[i]):
                    grad[k] += error * value
            bias -= 0.5 * grad_bias / len(train)
            w = [wk - 0.5 * (gk / len(train) + 0.01 * wk) for wk, gk in zip(w, grad, strict=True)]
        for i in range(len(rows)):
            if fold_of[i] == fold:
                scores[i] = bias + sum(a * b for a, b in zip(w, x[i], strict=True))
    return scores


def attack(insurer, candidate_runs: set[int]) -> tuple[dict[str, float], float, float, int, int]:
    """Feature AUCs, the regression's AUC and σ, over the contracts created by ``candidate_runs``."""
    contracts = registry_copy(insurer)
    table = features(contracts)
    planted = canary_contracts(insurer)
    pks = [
        pk for pk in table if contracts[pk]["run"] is not None and contracts[pk]["run"].pk in candidate_runs
    ]
    labels = [pk in planted for pk in pks]
    names = sorted(next(iter(table.values())))
    per_feature = {name: auc([table[pk][name] for pk in pks], labels) for name in names}
    model = auc(
        cross_validated_logistic_scores([[table[pk][n] for n in names] for pk in pks], labels), labels
    )
    return per_feature, model, null_sigma(labels), sum(labels), len(labels) - sum(labels)


# --- the world and the plantings ----------------------------------------------------------------------------


def _world(tmp_path, settings, seed: int) -> World:
    settings.VAR_DIR = tmp_path / "var"
    world = World(make_insurer(tmp_path), tmp_path, seed=seed)
    world.first_load(1500)
    return world


def _live_with_carriers(world: World, plant) -> set[int]:
    carriers = set()
    for day in range(1, DELTAS + 1):
        path, families = world.delta(day, NEW_PER_DELTA)
        if day <= 2:  # the insurer's life before the first canaries
            world.import_delta(path, families)
            continue
        run = plant(path)
        world.remember(run, families)
        carriers.add(run.pk)
    return carriers


def _report(per_feature, model, sigma, n1, n0) -> str:
    worst = sorted(per_feature.items(), key=lambda kv: -abs(kv[1] - 0.5))[:6]
    shown = ", ".join(f"{name} {value:.3f}" for name, value in worst)
    return f"{n1} canary contracts among {n0} real ones, σ {sigma:.3f}; model {model:.3f}; worst: {shown}"


def test_canaries_riding_in_ordinary_deltas_cannot_be_told_apart(tmp_path, settings, seed=1):
    world = _world(tmp_path, settings, seed)
    rng = random.Random(seed)

    def plant(path):
        planting = canaries.plant_in_import(
            world.insurer, CANARIES_PER_DELTA, seed=rng.randrange(1 << 30), carrier=path, today=TODAY
        )
        assert planting.past_the_top == 0
        return planting.run

    carriers = _live_with_carriers(world, plant)
    per_feature, model, sigma, n1, n0 = attack(world.insurer, carriers)
    print(_report(per_feature, model, sigma, n1, n0))
    assert n1 >= 40 and n0 >= 1000
    found = {name: value for name, value in per_feature.items() if abs(value - 0.5) > FEATURE_Z * sigma}
    assert not found, _report(per_feature, model, sigma, n1, n0)
    assert model - 0.5 <= MODEL_Z * sigma, _report(per_feature, model, sigma, n1, n0)

    # The attack report's rules, one by one.
    planted = canary_contracts(world.insurer)
    contracts = registry_copy(world.insurer)
    numbers = [contracts[pk]["adherent_number"] for pk in planted]
    assert all(re.fullmatch(r"MT\d{8}", n) and luhn.is_valid(n[2:]) for n in numbers)  # the insurer's pattern
    sizes = Counter(len(contracts[pk]["people"]) for pk in planted)
    assert sizes[1] < 0.7 * len(planted) and max(sizes) >= 3  # not one-person contracts
    assert {contracts[pk]["run"].pk for pk in planted} <= carriers  # no run of their own …
    assert all(
        contracts[pk]["run"].file_name.startswith("MT_delta_") for pk in planted
    )  # … nor a telltale name
    assert ImportRun.objects.filter(insurer=world.insurer).count() == 1 + DELTAS
    products = Counter(contracts[pk]["product__code"] for pk in planted)
    assert len(products) >= 2  # the insurer's products, not one


def test_canaries_in_a_delta_of_their_own_look_like_the_insurers_recent_contracts(tmp_path, settings, seed=1):
    """Without one of the insurer's files to ride in, canaries come in a delta of their own: row by row
    they look like the insurer's recent contracts (what they are drawn from), numbering included. Their
    run, though, is the one that created them (ids, counts): docs/surveillance.md says so."""
    world = _world(tmp_path, settings, seed)
    for day in range(1, 9):
        world.import_delta(*world.delta(day, NEW_PER_DELTA))
    recent = set(
        Contract.objects.filter(insurer=world.insurer).order_by("-id").values_list("id", flat=True)[:1000]
    )
    rng = random.Random(seed)
    runs = set()
    for _ in range(6):
        runs.add(canaries.plant_in_import(world.insurer, 20, seed=rng.randrange(1 << 30), today=TODAY).run.pk)
    contracts = registry_copy(world.insurer)
    table = features(contracts)
    planted = canary_contracts(world.insurer)
    assert {contracts[pk]["run"].pk for pk in planted} == runs
    pks = [pk for pk in table if pk in recent or pk in planted]
    labels = [pk in planted for pk in pks]
    names = sorted(n for n in next(iter(table.values())) if not n.startswith(("id_", "run_")))
    per_feature = {name: auc([table[pk][name] for pk in pks], labels) for name in names}
    model = auc(
        cross_validated_logistic_scores([[table[pk][n] for n in names] for pk in pks], labels), labels
    )
    sigma = null_sigma(labels)
    report = _report(per_feature, model, sigma, sum(labels), len(labels) - sum(labels))
    print(report)
    assert sum(labels) >= 40
    assert not {n: v for n, v in per_feature.items() if abs(v - 0.5) > FEATURE_Z * sigma}, report
    assert model - 0.5 <= MODEL_Z * sigma, report


def test_the_attack_finds_canaries_planted_the_old_way(tmp_path, settings):
    """The old planter: one-person contracts numbered in the generator's series, in a run of their own."""
    world = _world(tmp_path, settings, 2)
    rng = random.Random(2)
    serial = [0]

    def plant(path):
        run = world.import_delta(path, [])
        rows = []
        for _ in range(CANARIES_PER_DELTA):
            family = world.families(6, f"old-{rng.random()}", recent=False)[0]
            row = list(family[0])
            serial[0] += 1
            row[COL["adherent_number"]] = f"00{serial[0]:08d}"
            rows.append(row)
        lines = [fmt.magic_line(world.insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
        old = world.tmp / f"old-{serial[0]}"
        old.mkdir()
        (old / "maintenance.csv").write_text("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n")
        canary_run, _summary = import_rights(
            old / "maintenance.csv", world.insurer, show_progress=False, today=TODAY
        )
        _tag_contracts(world.insurer, [r[COL["adherent_number"]] for r in rows])
        world.runs.append(canary_run)
        carriers.add(canary_run.pk)
        return run

    carriers: set[int] = set()
    carriers |= _live_with_carriers(world, plant)
    per_feature, model, sigma, n1, n0 = attack(world.insurer, carriers)
    print(_report(per_feature, model, sigma, n1, n0))
    assert model > 0.9 and per_feature["family_size"] < 0.2 and per_feature["number_luhn_valid"] < 0.2


def test_the_attack_finds_well_drawn_canaries_put_at_the_end_of_the_file(tmp_path, settings, monkeypatch):
    """Same families and numbers, but appended after the file's new contracts: their ids break the order."""
    world = _world(tmp_path, settings, 3)
    rng = random.Random(3)
    monkeypatch.setattr(
        canary_carrier.Carrier, "_points", lambda self, families, rng: [self._end_of_new()] * len(families)
    )

    def plant(path):
        return canaries.plant_in_import(
            world.insurer, CANARIES_PER_DELTA, seed=rng.randrange(1 << 30), carrier=path, today=TODAY
        ).run

    carriers = _live_with_carriers(world, plant)
    per_feature, model, sigma, n1, n0 = attack(world.insurer, carriers)
    print(_report(per_feature, model, sigma, n1, n0))
    assert per_feature["id_position_in_run"] > 0.9 and model > 0.9
    # The order check alone finds them.
    assert abs(per_feature["id_order_inversion"] - 0.5) > FEATURE_Z * sigma


def _tag_contracts(insurer, numbers: list[str]) -> None:
    for pk in Beneficiary.objects.filter(
        contract__insurer=insurer, contract__adherent_number__in=numbers
    ).values_list("pk", flat=True):
        Canary.objects.create(insurer=insurer, tag=canaries.tag_of(pk), sealed_card=b"")
