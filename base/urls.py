from django.urls import path

from base import apis
from base.api_docs import DocsView, SchemaView

urlpatterns = [
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/change-requests", apis.ChangeRequestListApi.as_view(), name="change-request-list"),
    path("api/v1/change-requests/<int:pk>", apis.ChangeRequestDetailApi.as_view(), name="change-request-detail"),
    path("api/v1/change-requests/<int:pk>/approve", apis.ChangeRequestApproveApi.as_view(),
         name="change-request-approve"),
    path("api/v1/change-requests/<int:pk>/reject", apis.ChangeRequestRejectApi.as_view(),
         name="change-request-reject"),
    path("api/v1/change-requests/<int:pk>/cancel", apis.ChangeRequestCancelApi.as_view(),
         name="change-request-cancel"),
]
