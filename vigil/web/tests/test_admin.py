from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from vigil.api.models import ApiToken
from vigil.lib.tokens import hash_token
from vigil.servers.models import IngestToken
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


@pytest.mark.parametrize(
    "model",
    ["servers/location", "servers/tag", "servers/server", "servers/ingesttoken",
     "metrics/series", "api/apitoken"],
)  # fmt: skip
def test_every_model_has_an_admin_list(admin_client, model):
    server = make_server("web-1")
    store(server, "load1", [(1_790_000_000, 1)])
    assert admin_client.get(f"/admin/{model}/").status_code == 200


def test_an_ingest_token_made_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    response = admin_client.post(
        "/admin/servers/ingesttoken/add/", {"name": "rack 4", "enabled": "on"}, follow=True
    )
    message = next(str(m) for m in response.context["messages"])
    token = message.rsplit(" ", 1)[-1]
    assert token.startswith("vgi_")
    stored = IngestToken.objects.get()
    assert stored.token_hash == hash_token(token)
    page = admin_client.get(f"/admin/servers/ingesttoken/{stored.pk}/change/").content.decode()
    assert token not in page
    assert stored.token_hash not in page


def test_an_api_token_made_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    user = User.objects.get()
    response = admin_client.post(
        "/admin/api/apitoken/add/", {"user": user.pk, "name": "script"}, follow=True
    )
    token = next(str(m) for m in response.context["messages"]).rsplit(" ", 1)[-1]
    assert ApiToken.objects.get().token_hash == hash_token(token)
