import re

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from releases import policy
from releases.api.input_rules import check_document
from releases.keyset import BadCursor, Cursor, keyset_page


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo ("enviroment") is an error instead of a silent default."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [gettext("unknown field; accepted fields: %(fields)s") % {"fields": ", ".join(self.fields)}]
                     for name in unknown}
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


MAX_OFFSET = 1000


def comma_choices_field(choices, **kwargs) -> serializers.CharField:
    """A query filter that takes a comma-separated list of `choices`; the schema carries the rule as a pattern so
    schema-driven clients (and the schemathesis run) only send lists the view accepts."""
    one = "|".join(re.escape(choice) for choice in choices)
    # A subclass per list: DRF deep-copies declared fields by re-creating them, so an annotation must sit on a class.
    field_class = extend_schema_field({"type": "string", "pattern": f"^(({one})(,({one}))*)?$",
                                       "maxLength": kwargs.get("max_length", 200)})(
        type("CommaChoicesField", (serializers.CharField,), {}))
    return field_class(required=False, default="", **kwargs)

KEYSET_PARAMETERS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="rows per page, 1-1000 (default 100; "
                     "more is served as 1000)"),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="opaque position from the Link header's rel=next or "
                     "rel=prev URL; pages stay fast at any depth"),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, description=f"rows to skip, at most {MAX_OFFSET}: deeper pages "
                     "are reached with `cursor`"),
    OpenApiParameter("count", OpenApiTypes.BOOL, description="true: also send the number of matching rows in "
                     "X-Total-Count (reads every matching row; not sent otherwise)"),
]


class KeysetPagination:
    """Newest-first pages by (time field, id): plain JSON arrays, next/prev pages as cursors in the Link header.

    `offset` still works up to MAX_OFFSET rows for old scripts; the total is counted only when `count=true` asks
    for it. Both OFFSET and COUNT(*) cost time in proportion to the table (releases.keyset explains)."""

    default_limit = 100
    max_limit = 1000

    def __init__(self, field: str = "created_at"):
        self.field = field
        self.count = None

    def _int(self, request, name: str, default: int, low: int, high: int | None) -> int:
        raw = request.query_params.get(name, "")
        if raw == "":
            return default
        if not raw.isdigit() or int(raw) < low:
            raise ValidationError({name: [f"must be a whole number ≥ {low}"]})
        value = int(raw)
        if high is not None and value > high:
            if name == "offset":
                raise ValidationError({name: [f"at most {high}; follow the Link header's rel=next cursor (or "
                                              "narrow the filters) to go deeper"]})
            value = high
        return value

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.request = request
        limit = self._int(request, "limit", self.default_limit, 1, self.max_limit)
        offset = self._int(request, "offset", 0, 0, MAX_OFFSET)
        cursor = request.query_params.get("cursor", "")
        if cursor and offset:
            raise ValidationError({"offset": ["cannot be combined with cursor"]})
        count = request.query_params.get("count", "").lower()
        if count not in ("", "1", "true", "yes", "0", "false", "no"):
            raise ValidationError({"count": ["must be true or false"]})
        if count in ("1", "true", "yes"):
            self.count = queryset.count()
        if offset:
            rows = list(queryset.order_by(f"-{self.field}", "-pk")[offset:offset + limit + 1])
            self.next_cursor = Cursor.after(rows[limit - 1], self.field).encode() if len(rows) > limit else None
            rows = rows[:limit]
            self.previous_cursor = Cursor.before(rows[0], self.field).encode() if rows else None
            return rows
        try:
            page = keyset_page(queryset, field=self.field, size=limit, cursor=cursor)
        except BadCursor as error:
            raise ValidationError({"cursor": [str(error)]})
        self.next_cursor, self.previous_cursor = page.next_cursor, page.previous_cursor
        return page.items

    def _link(self, cursor: str) -> str:
        query = self.request.query_params.copy()
        query.pop("offset", None)
        query.pop("count", None)
        query["cursor"] = cursor
        return self.request.build_absolute_uri(self.request.path + "?" + query.urlencode())

    def get_paginated_response(self, data) -> Response:
        headers = {}
        if self.count is not None:
            headers["X-Total-Count"] = str(self.count)
        links = [f'<{self._link(c)}>; rel="{rel}"' for rel, c in (("next", self.next_cursor),
                                                                  ("prev", self.previous_cursor)) if c]
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)


def paginate_keyset(view, request, queryset, serializer_class, *, field: str = "created_at") -> Response:
    """A newest-first page of `queryset` by (field, id), as a plain JSON array with Link headers (cursors)."""
    paginator = KeysetPagination(field)
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
