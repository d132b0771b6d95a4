"""The JSON API root; each bounded context adds its router."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Rempart API",
    version="1",
    description="Tiers payant API for health professionals' software. Authentication: Bearer token.",
    docs_url="/docs",
)
