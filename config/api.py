"""One exception handler for every API: domain and framework errors become `{code, message, details}`."""

from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from config.api_input import SafeLimitOffsetPagination
from config.errors import Accepted, ApplicationError


class ListApi(APIView):
    """A view whose GET answers one page of a list: `{count, next, previous, results}`.

    `pagination_class` is also what the schema generator reads to document the page shape.
    """

    pagination_class: type[LimitOffsetPagination] = SafeLimitOffsetPagination

    def page_response(self, request: Request, items: Any, render: Callable[[Sequence[Any]], Any]) -> Response:
        paginator = self.pagination_class()
        page: list[Any] | None = paginator.paginate_queryset(items, request, view=self)
        assert page is not None
        return paginator.get_paginated_response(render(page))


def validated_input(
    serializer_class: type[serializers.Serializer[Any]], request: Request, *, partial: bool = False
) -> dict[str, Any]:
    """The request body checked by `serializer_class`; a 400 `validation_error` otherwise, also
    naming every field the body has and the serializer does not (nothing is silently ignored)."""
    data = request.data
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(serializer_class().fields))
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown field: it cannot be set here."] for name in unknown})
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def _django_validation_details(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Accepted):
        return Response(exc.body(), status=exc.status)
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        details = _django_validation_details(exc)
        return Response(
            error_body("validation_error", "The request is not valid.", details),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", "The request is not valid.", exc.detail)
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (dict, list)) else exc.default_detail
        body = error_body(str(exc.default_code), str(message))
    response.data = body
    return response
