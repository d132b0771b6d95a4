"""/fhir/r4/: the CapabilityStatement, the two operations, the code systems; anything else is a FHIR 404."""

from django.urls import path, re_path

from rempart.fhir import views

urlpatterns = [
    path("r4/metadata", views.metadata),
    path("r4/CoverageEligibilityRequest/$submit", views.eligibility_submit),
    path("r4/Claim/$submit", views.claim_submit),
    path("r4/CodeSystem/<str:system_id>", views.code_system),
    path("r4/OperationDefinition/<str:name>", views.operation_definition),
    re_path(r"^(?P<rest>.*)$", views.unknown),
]
