"""Deleting layers and holdouts: refused while experiments that are not archived (or flag rules)
use them, audited, and available in the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import Conflict, ValidationFailed
from experiments import services as experiment_services
from experiments import traffic as traffic_deletes
from experiments.models import Experiment
from flags import services as flag_services
from flags.models import Flag
from traffic import services
from traffic.models import Holdout, Layer

pytestmark = pytest.mark.django_db
A = Actor(label="tester", via="system")


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


@pytest.fixture
def flag(production: Environment) -> Flag:
    return flag_services.flag_create(
        actor=A, key="checkout", value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"}],
    )


def _draft(flag: Flag, env: Environment, **links: Any) -> Experiment:
    return experiment_services.experiment_create(
        actor=A, key="checkout-test", flag=flag, environment=env,
        variations=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}], **links,
    )


def test_layer_delete__draft_uses_it__conflict_then_archived__deleted_and_audited(
    flag: Flag, production: Environment
) -> None:
    layer = services.layer_create(actor=A, key="checkout-layer")
    experiment = _draft(flag, production, layer="checkout-layer", range_start=0.0, range_end=0.5)
    with pytest.raises(Conflict) as refused:
        traffic_deletes.layer_delete(actor=A, layer=layer)
    assert refused.value.code == "layer_in_use"
    assert refused.value.details == {"experiments": ["checkout-test"]}
    assert Layer.objects.filter(pk=layer.pk).exists()
    experiment_services.experiment_archive(actor=A, experiment=experiment)
    version = Environment.objects.get(pk=production.pk).config_version
    traffic_deletes.layer_delete(actor=A, layer=layer)
    assert not Layer.objects.exists()
    assert Experiment.objects.get(pk=experiment.pk).layer is None
    entry = AuditEntry.objects.get(action="layer.delete")
    assert entry.object_key == "checkout-layer" and entry.after is None
    assert entry.before is not None and entry.before["archived_experiments"] == ["checkout-test"]
    assert Environment.objects.get(pk=production.pk).config_version > version


def test_layer_delete__flag_rule_uses_its_namespace__conflict(flag: Flag, production: Environment) -> None:
    layer = services.layer_create(actor=A, key="checkout-layer")
    rule = flag_services.flag_rule_create(actor=A, flag=flag, environment=production, kind="experiment",
                                          variations=["control", "treatment"], weights=[0.5, 0.5],
                                          namespace=["checkout-layer", 0.0, 0.3])
    with pytest.raises(Conflict) as refused:
        traffic_deletes.layer_delete(actor=A, layer=layer)
    assert refused.value.details == {"rules": [f"checkout@production:{rule.uid}"]}


def test_holdout_delete__experiment_or_rule_uses_it__conflict_else_deleted(
    flag: Flag, production: Environment
) -> None:
    holdout = services.holdout_create(actor=A, key="global", share=0.1)
    experiment = _draft(flag, production, holdout="global")
    with pytest.raises(Conflict) as by_experiment:
        traffic_deletes.holdout_delete(actor=A, holdout=holdout)
    assert by_experiment.value.code == "holdout_in_use"
    experiment_services.experiment_archive(actor=A, experiment=experiment)
    rule = flag_services.flag_rule_create(actor=A, flag=flag, environment=production, kind="experiment",
                                          variations=["control", "treatment"], weights=[0.5, 0.5], holdout="global")
    with pytest.raises(Conflict) as by_rule:
        traffic_deletes.holdout_delete(actor=A, holdout=holdout)
    assert by_rule.value.details == {"rules": [f"checkout@production:{rule.uid}"]}
    flag_services.flag_rule_delete(actor=A, rule=rule)
    traffic_deletes.holdout_delete(actor=A, holdout=holdout)
    assert not Holdout.objects.exists()
    assert Experiment.objects.get(pk=experiment.pk).holdout is None
    assert AuditEntry.objects.filter(action="holdout.delete", object_key="global").count() == 1


def test_updates__unknown_fields__refused_by_the_shared_check() -> None:
    layer = services.layer_create(actor=A, key="l1")
    holdout = services.holdout_create(actor=A, key="h1", share=0.1)
    with pytest.raises(ValidationFailed) as on_layer:
        services.layer_update(actor=A, layer=layer, key="renamed")
    assert on_layer.value.details == {"key": ["A layer has no field 'key' that can be set."]}
    with pytest.raises(ValidationFailed) as on_holdout:
        services.holdout_update(actor=A, holdout=holdout, colour="red")
    assert "colour" in on_holdout.value.details
    services.holdout_update(actor=A, holdout=holdout, share=0.2)
    entry = AuditEntry.objects.get(action="holdout.update")
    assert entry.before is not None and entry.after is not None
    assert (entry.before["share"], entry.after["share"]) == (0.1, 0.2)


def test_admin_delete__in_use_message__then_deleted(
    admin_client: Client, flag: Flag, production: Environment
) -> None:
    holdout = services.holdout_create(actor=A, key="global", share=0.1)
    experiment = _draft(flag, production, holdout="global")
    url = reverse("admin:traffic_holdout_delete", args=[holdout.pk])
    assert admin_client.get(url).status_code == 200
    refused = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "is in use" in refused.content.decode() and "checkout-test" in refused.content.decode()
    assert Holdout.objects.filter(pk=holdout.pk).exists()
    experiment_services.experiment_archive(actor=A, experiment=experiment)
    done = admin_client.post(url, {"post": "yes"})
    assert done.status_code == 302
    assert not Holdout.objects.exists()
    assert AuditEntry.objects.get(action="holdout.delete").via == "admin"
