from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "rempart.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Each app registers its job kinds in <app>/jobs.py; importing them here makes every kind known to
        # the web processes (which enqueue) and the workers (which run) alike.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
        import importlib

        from django.conf import settings

        for module in settings.REMPART_JOBS_EXTRA_MODULES:  # e.g. the test suite's sample kinds
            importlib.import_module(module)
