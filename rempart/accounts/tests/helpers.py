import time

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY


def age_second_factor(client, seconds: int) -> None:
    """Pretend this session's last second factor was proved ``seconds`` ago."""
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] = time.time() - seconds
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()
