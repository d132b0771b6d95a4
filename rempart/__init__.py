"""Rempart: a tiers payant platform that confirms rights without disclosing them."""
