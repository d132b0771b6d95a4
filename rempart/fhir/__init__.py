"""FHIR R4 next to the JSON API: the same operations, the same gate, ledger and surveillance (docs/fhir.md)."""
