"""The editing rules behind every channel editor: the settings offered per
kind stay in step with each transport's validate(), secrets are merged
write-only, and errors are cleaned of secrets. No database."""

from __future__ import annotations

import pytest

from vigil.notify import configure
from vigil.notify.configure import HIDDEN
from vigil.notify.forms import _from_text


def test_every_kind_that_ships_is_installed_and_offered():
    kinds = dict(configure.kinds())
    assert set(configure.FIELDS) <= set(kinds)
    assert kinds["pagerduty"] == "PagerDuty" and kinds["webhook"] == "Webhook"


@pytest.mark.parametrize("kind", sorted(configure.FIELDS))
def test_every_setting_a_kind_asks_for_is_offered_by_its_editor(kind):
    offered = {f.name for f in configure.config_fields(kind) or ()}
    secrets = set(configure.secret_fields(kind))
    asked = set(configure.validate(kind, {}, {}))
    assert asked <= offered | secrets, asked - offered - secrets


@pytest.mark.parametrize("kind", sorted(configure.FIELDS))
def test_the_examples_shown_in_each_editor_are_accepted(kind, settings):
    settings.EMAIL_URL = "smtp://mail.example.com:587"
    config = {
        f.name: _from_text(f, f.placeholder)
        for f in configure.config_fields(kind) or ()
        if f.placeholder
    }
    errors = configure.validate(kind, config, {})
    assert not set(errors) & set(config), errors


def test_a_transport_may_declare_its_own_settings():
    class Declared(configure.Transport):
        kind = "declared"
        config_fields = ("room", ("server_url", "Server", "Where it lives"))

    configure.REGISTRY["declared"] = Declared
    try:
        fields = configure.config_fields("declared")
        assert [(f.name, f.label, f.help) for f in fields] == [
            ("room", "Room", ""),
            ("server_url", "Server", "Where it lives"),
        ]
    finally:
        configure.REGISTRY.pop("declared")
    assert configure.config_fields("declared") is None


def test_secrets_are_reported_only_as_set_or_not_set():
    assert configure.secret_state("webhook", {"secret": "abc", "url": ""}) == {
        "secret": "set",
        "url": "not set",
    }
    # A kind that is no longer installed: what is stored, so it can be cleared.
    assert configure.secret_state("gone", {"token": "x"}) == {"token": "set"}


def test_merging_keeps_what_is_not_given_clears_none_and_refuses_strangers():
    stored = {"secret": "old-signing-key-123456", "stale": "x"}
    merged, errors = configure.merge_secrets("webhook", stored, {"url": "https://h.example/t"})
    assert merged == {"secret": "old-signing-key-123456", "url": "https://h.example/t"}
    assert errors == {}
    merged, errors = configure.merge_secrets("webhook", stored, {"secret": None, "pin": "1"})
    assert merged == {}
    assert "not a secret of a webhook channel" in errors["pin"]


def test_an_error_goes_to_the_setting_or_the_secret_that_was_given():
    target = configure.error_target
    assert target("webhook", "url", {}, {}) == "config"
    assert target("webhook", "url", {}, {"url": "https://x"}) == "secrets"
    assert target("webhook", "url", {"url": "https://x"}, {"url": "https://y"}) == "config"
    assert target("pagerduty", "routing_key", {}, {}) == "secrets"
    assert target("pagerduty", "api_base", {}, {}) == "config"


def test_redaction_masks_a_secret_however_it_is_quoted():
    secrets = {
        "url": "https://hooks.example.com/services/T0/B0/s3cr3t+token",
        "smtp": "smtp://alert:p%40ss-word@mail.example.com:587",
        "pin": "abc",
    }
    text = (
        "POST https://hooks.example.com/services/T0/B0/s3cr3t+token failed; "
        "sent https%3A%2F%2Fhooks.example.com%2Fservices%2FT0%2FB0%2Fs3cr3t%2Btoken; "
        "login with p@ss-word refused; code abc kept"
    )
    shown = configure.redact(text, secrets)
    assert "s3cr3t" not in shown and "p@ss-word" not in shown
    assert shown.count(HIDDEN) == 3
    assert "code abc kept" in shown  # too short to mask without hiding ordinary words
    assert configure.redact("", secrets) == ""
    assert configure.redact("plain", {}) == "plain"


def test_an_escalation_needs_minutes_and_channels():
    assert configure.route_errors(0, []) == {}
    assert configure.route_errors(10, [1]) == {}
    assert "escalate_to" in configure.route_errors(10, [])
    assert "escalate_after_minutes" in configure.route_errors(0, [1])


def test_list_and_mapping_settings_are_read_from_lines():
    to, headers = configure.FIELDS["email"][0], configure.FIELDS["webhook"][1]
    assert _from_text(to, " a@example.com \n\n b@example.com\r\n") == [
        "a@example.com",
        "b@example.com",
    ]
    assert _from_text(headers, "X-Team: ops\nX-Url: https://a.example/x") == {
        "X-Team": "ops",
        "X-Url": "https://a.example/x",
    }
    with pytest.raises(Exception, match="Line 2"):
        _from_text(headers, "X-Team: ops\nno colon here")
