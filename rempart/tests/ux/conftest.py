import json

import pytest

from rempart.accounts import tokens


@pytest.fixture
def token_for(cast):
    """A raw API token of the optician with the given scopes."""

    def make(*scopes: str) -> str:
        return tokens.create_token(cast.optician, "LGO", list(scopes), cast.owner)[1]

    return make


@pytest.fixture
def api(client):
    """Call the API in a language: ``api("post", path, token, body, lang="en")``."""

    def call(method, path, raw=None, body=None, *, lang=None, content_type="application/json", **extra):
        headers = {}
        if raw:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
        if lang:
            headers["HTTP_ACCEPT_LANGUAGE"] = lang
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        kwargs = {"content_type": content_type} if method in ("post", "put", "patch") else {}
        if body is not None:
            kwargs["data"] = body
        return getattr(client, method)(path, **kwargs, **headers, **extra)

    return call
