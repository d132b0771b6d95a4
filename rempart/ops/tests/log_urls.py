"""A URL conf for the request-log tests: the site's routes, plus a view that logs and one that fails."""

import logging

from django.http import JsonResponse
from django.urls import path

from rempart.urls import handler404, handler500  # noqa: F401 - the site's error pages
from rempart.urls import urlpatterns as site_patterns

log = logging.getLogger("rempart.tests.ops")


def logs_something(request):
    log.warning("inside the view")
    return JsonResponse({"request_id": request.request_id})


def fails(request):
    raise RuntimeError("boom: NIR 185057512345623 in an exception")


urlpatterns = [path("_test/logs", logs_something), path("_test/fails", fails), *site_patterns]
