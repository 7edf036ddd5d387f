"""drf-spectacular extensions: the schema of a request body says the rules StrictInputSerializer enforces, so
schema-driven clients (and the schemathesis run in the test suite) send only bodies the views accept."""
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

# DRF strips surrounding whitespace and then refuses a blank string: a non-blank string has a non-space character.
NOT_BLANK = r"\S"


class StrictInputSerializerSchema(OpenApiSerializerExtension):
    target_class = "releases.api.base.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False  # unknown fields are refused, naming the accepted ones
        for name, field in self.target.fields.items():
            prop = schema.get("properties", {}).get(name)
            if prop is None or field.read_only:
                continue
            if (isinstance(field, serializers.CharField) and not field.allow_blank and prop.get("type") == "string"
                    and not ({"pattern", "enum", "format", "minLength"} & set(prop))):
                prop["pattern"] = NOT_BLANK
        return schema
