"""Background jobs: long work out of the request, on Django's tasks framework (django-tasks), with progress,
retries after a lost worker, and a scheduler that runs each periodic job once however many workers run."""
