"""The JSON API root: bearer tokens only (never cookies); each bounded context adds its router."""

from ninja import NinjaAPI

from rempart.accounts.api import router as accounts_router

api = NinjaAPI(
    title="Rempart API",
    version="1",
    description=(
        "API de tiers payant pour les logiciels des professionnels de santé. "
        "Authentification : `Authorization: Bearer <jeton>` (créé par le titulaire de l'organisation, "
        "avec les autorisations nécessaires). Les cookies ne sont jamais acceptés."
    ),
    docs_url="/docs",
)
api.add_router("/", accounts_router)
