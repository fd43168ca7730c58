from django.urls import path

from flags import apis

urlpatterns = [
    path("environments", apis.EnvironmentListApi.as_view(), name="environment-list"),
    path("environments/<str:key>", apis.EnvironmentDetailApi.as_view(), name="environment-detail"),
    path("environments/<str:key>/rotate-keys", apis.EnvironmentRotateKeysApi.as_view(), name="environment-rotate"),
    path("flags", apis.FlagListApi.as_view(), name="flag-list"),
    path("flags/<str:key>", apis.FlagDetailApi.as_view(), name="flag-detail"),
    path("flags/<str:key>/archive", apis.FlagArchiveApi.as_view(), name="flag-archive"),
    path("flags/<str:key>/restore", apis.FlagRestoreApi.as_view(), name="flag-restore"),
    path("flags/<str:key>/environments/<str:env>", apis.FlagStateApi.as_view(), name="flag-state"),
    path("flags/<str:key>/environments/<str:env>/rules", apis.FlagRuleListApi.as_view(), name="flag-rules"),
    path("flags/<str:key>/environments/<str:env>/rules/reorder", apis.FlagRuleReorderApi.as_view(),
         name="flag-rules-reorder"),
    path("flags/<str:key>/environments/<str:env>/rules/<str:uid>", apis.FlagRuleDetailApi.as_view(),
         name="flag-rule-detail"),
    path("segments", apis.SegmentListApi.as_view(), name="segment-list"),
    path("segments/<str:key>", apis.SegmentDetailApi.as_view(), name="segment-detail"),
    path("attributes", apis.AttributeListApi.as_view(), name="attribute-list"),
    path("attributes/<str:name>", apis.AttributeDetailApi.as_view(), name="attribute-detail"),
]
