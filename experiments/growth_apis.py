"""`/api/v1/north-star`: the project's north-star metric and its input metrics."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base.authentication import request_actor
from base.permissions import Action
from config.api import validated_input
from experiments.growth import MAX_INPUT_METRICS, north_star_document, north_star_get, north_star_set


class NorthStarOutput(serializers.Serializer[Any]):
    metric = serializers.CharField(allow_null=True, help_text="Key of the north-star metric; null until chosen.")
    input_metrics = serializers.ListField(child=serializers.CharField())


class NorthStarApi(APIView):
    required_actions = {"GET": Action.PROJECT_SETTINGS_VIEW, "PUT": Action.PROJECT_SETTINGS_CHANGE}

    @extend_schema_serializer(component_name="NorthStarInput")
    class InputSerializer(serializers.Serializer[Any]):
        metric = serializers.CharField(max_length=100, help_text="A conversion, mean or count metric of the catalog.")
        input_metrics = serializers.ListField(child=serializers.CharField(max_length=100), required=False,
                                             max_length=MAX_INPUT_METRICS, default=list)

    @extend_schema(responses=NorthStarOutput)
    def get(self, request: Request) -> Response:
        return Response(north_star_document(north_star_get()))

    @extend_schema(request=InputSerializer, responses=NorthStarOutput)
    def put(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request)
        row = north_star_set(actor=request_actor(request), metric=data["metric"],
                             input_metrics=list(data.get("input_metrics") or []))
        return Response(north_star_document(row))
