"""The kill switch service (`flags.services.flag_switch`), called directly: it switches and
audits once, and refuses a switch to the state the flag is already in."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import Conflict
from flags import services
from flags.models import FlagState

pytestmark = pytest.mark.django_db

PM = Actor(label="pm", via="admin")


def test_flag_switch__off_then_on__each_audited_as_a_toggle_in_its_environment(
    environments: dict[str, Environment]
) -> None:
    flag = services.flag_create(actor=Actor.system("test"), key="new-checkout")
    prod = environments["production"]

    state = services.flag_switch(actor=PM, flag=flag, environment=prod, enabled=True)
    assert state.enabled and FlagState.objects.get(flag=flag, environment=prod).enabled
    services.flag_switch(actor=PM, flag=flag, environment=prod, enabled=False)

    entries = AuditEntry.objects.filter(actor_label="pm").order_by("id")
    assert [(e.action, e.environment) for e in entries] == [("flag.toggle", "production")] * 2
    assert not FlagState.objects.get(flag=flag, environment=prod).enabled
    assert not FlagState.objects.get(flag=flag, environment=environments["staging"]).enabled


def test_flag_switch__already_in_the_asked_state__refused_and_nothing_written(
    environments: dict[str, Environment]
) -> None:
    flag = services.flag_create(actor=Actor.system("test"), key="new-checkout")
    prod = environments["production"]
    version = Environment.objects.get(pk=prod.pk).config_version

    with pytest.raises(Conflict) as caught:
        services.flag_switch(actor=PM, flag=flag, environment=prod, enabled=False)

    assert caught.value.code == "flag_already_switched"
    assert caught.value.message == "The flag changed since the page was shown; nothing was done. Check and retry."
    assert not AuditEntry.objects.filter(actor_label="pm").exists()
    assert Environment.objects.get(pk=prod.pk).config_version == version
