"""The site's URLs plus two that fail on purpose: the 500 page and the 500 JSON are tested through them."""

from django.urls import path

from rempart.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


def boom(request):
    raise RuntimeError("SECRET-TRACEBACK-TEXT")


urlpatterns = [path("ux-test/boom/", boom), path("api/ux-test/boom/", boom), *urlpatterns]
