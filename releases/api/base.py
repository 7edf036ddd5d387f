from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from releases import policy
from releases.api.input_rules import check_document


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo ("enviroment") is an error instead of a silent default."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"unknown field; accepted fields: {', '.join(self.fields)}"] for name in unknown}
                )
        return super().to_internal_value(data)


class CommentInput(StrictInputSerializer):
    """The body of every action: an optional comment (settings.ROLLGATE_MAX_COMMENT_LENGTH characters at most)."""

    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=settings.ROLLGATE_MAX_COMMENT_LENGTH)


class HeaderPagination(LimitOffsetPagination):
    """Lists stay plain JSON arrays; the total and the next page travel in headers (X-Total-Count, Link)."""

    default_limit = 100
    max_limit = 1000

    def get_paginated_response(self, data):
        headers = {"X-Total-Count": str(self.count)}
        links = [f'<{url}>; rel="{rel}"' for rel, url in (("next", self.get_next_link()),
                                                          ("prev", self.get_previous_link())) if url]
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema


def paginate(view, request, queryset, serializer_class) -> Response:
    """A page of `queryset` as a plain JSON array, with X-Total-Count and Link headers (HeaderPagination)."""
    paginator = HeaderPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def requires(action: str):
    """A DRF permission class asking releases.policy for `action` (403 with the reason when refused)."""

    class PolicyPermission(BasePermission):
        def has_permission(self, request, view):
            decision = policy.can(request.user, action)
            self.message = decision.reason or "not allowed"
            return bool(decision)

    PolicyPermission.__name__ = f"Requires_{action.replace('.', '_')}"
    return PolicyPermission


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, plus a clear 400 for documents nested too deeply to parse (instead of a RecursionError)
    and for what the database or the encoder cannot take (input_rules: NUL, lone surrogates, depth, length)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply")
        check_document(data)
        return data
