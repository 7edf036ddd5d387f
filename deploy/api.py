"""REST API for deploy targets: values (base and per environment, versioned), revision history, rollback to a
revision, and environment credentials (write-only). One view per action; policy via releases.policy."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from deploy import selectors
from deploy import services as deploy_services
from deploy.models import CredentialKind
from deploy.targets.base import Revision
from deploy.targets.values import ValuesError
from releases import policy
from releases.api.base import StrictInputSerializer, paginate, requires
from releases.selectors import environment_by_name, service_by_name
from releases.services import Actor

PREVIEW_TAG = "RELEASE_TAG"  # stands in for the release's image tag in a merged-values preview


class ValuesOutput(serializers.Serializer):
    number = serializers.IntegerField()
    text = serializers.CharField()
    author = serializers.CharField(source="author_name")
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ValuesInput(StrictInputSerializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=deploy_services.VALUES_MAX_BYTES,
                                 help_text="the YAML document")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


def _current(row, **extra) -> dict:
    data = ValuesOutput(row).data if row else {"number": 0, "text": "", "author": "", "comment": "",
                                                "created_at": None}
    return {**data, **extra}



def _read_or_manage(request):
    return [requires(policy.ENVIRONMENT_SETTINGS_VIEW if request.method == "GET" else policy.ENVIRONMENT_MANAGE)()]


# --- values ------------------------------------------------------------------------------------------------


class ServiceValuesApi(APIView):
    """GET/PUT /api/services/<name>/values/ — the service's values.yaml."""

    def get_permissions(self):
        return _read_or_manage(self.request)

    @extend_schema(responses=ValuesOutput)
    def get(self, request, name: str):
        service = service_by_name(name)
        return Response(_current(selectors.service_values_current(service), service=service.name, file="values.yaml"))

    @extend_schema(request=ValuesInput, responses=ValuesOutput)
    def put(self, request, name: str):
        data = ValuesInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = deploy_services.values_update(actor=Actor.of(request.user), service=name, **data.validated_data)
        return Response(_current(row, service=name, file="values.yaml"))


class ServiceValuesHistoryApi(APIView):
    permission_classes = [requires(policy.ENVIRONMENT_SETTINGS_VIEW)]

    @extend_schema(responses=ValuesOutput(many=True))
    def get(self, request, name: str):
        service = service_by_name(name)
        return paginate(self, request, selectors.service_values_history(service), ValuesOutput)


class EnvironmentValuesApi(APIView):
    """GET/PUT /api/services/<name>/environments/<env>/values/ — values-<env>.yaml, plus the merged result."""

    def get_permissions(self):
        return _read_or_manage(self.request)

    @extend_schema(responses=ValuesOutput)
    def get(self, request, name: str, env: str):
        service = service_by_name(name)
        environment = environment_by_name(env)
        try:
            merged, merge_error = selectors.merged_values(service, environment, image_tag=PREVIEW_TAG), ""
        except (ValuesError, ValueError) as error:
            merged, merge_error = None, str(error)
        return Response(_current(selectors.environment_values_current(service, environment), service=service.name,
                                 environment=environment.name, file=f"values-{environment.name}.yaml",
                                 merged=merged, merge_error=merge_error))

    @extend_schema(request=ValuesInput, responses=ValuesOutput)
    def put(self, request, name: str, env: str):
        data = ValuesInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = deploy_services.values_update(actor=Actor.of(request.user), service=name, environment=env,
                                            **data.validated_data)
        return Response(_current(row, service=name, environment=env, file=f"values-{env}.yaml"))


class EnvironmentValuesHistoryApi(APIView):
    permission_classes = [requires(policy.ENVIRONMENT_SETTINGS_VIEW)]

    @extend_schema(responses=ValuesOutput(many=True))
    def get(self, request, name: str, env: str):
        service = service_by_name(name)
        environment = environment_by_name(env)
        return paginate(self, request, selectors.environment_values_history(service, environment), ValuesOutput)


# --- revisions ---------------------------------------------------------------------------------------------


class RevisionOutput(serializers.Serializer):
    revision = serializers.IntegerField(source="number")
    updated = serializers.DateTimeField(source="status_changed_at")
    created_at = serializers.DateTimeField()
    status = serializers.CharField()
    track = serializers.CharField()
    colour = serializers.CharField()
    image_tag = serializers.CharField()
    who = serializers.CharField(source="actor_name")
    description = serializers.CharField()
    rollback_of = serializers.IntegerField(allow_null=True)
    release = serializers.IntegerField(source="release_id", allow_null=True)
    rollout_reason = serializers.CharField()
    digest = serializers.CharField()


class RevisionListApi(APIView):
    """GET /api/services/<name>/environments/<env>/revisions/ — like `helm history`, newest first."""

    permission_classes = [requires(policy.ENVIRONMENT_SETTINGS_VIEW)]

    @extend_schema(responses=RevisionOutput(many=True))
    def get(self, request, name: str, env: str):
        service = service_by_name(name)
        environment = environment_by_name(env)
        return paginate(self, request, selectors.revision_history(service, environment), RevisionOutput)


class RevisionDetailApi(APIView):
    """GET .../revisions/<n>/ — one revision with the exact manifests it applied."""

    permission_classes = [requires(policy.ENVIRONMENT_SETTINGS_VIEW)]

    @extend_schema(responses=RevisionOutput)
    def get(self, request, name: str, env: str, number: int):
        service = service_by_name(name)
        environment = environment_by_name(env)
        row = selectors.revision_get(service, environment, number)
        if row is None:
            return Response({"detail": f"{name} has no revision {number} in {env}", "code": "not_found"}, status=404)
        revision = Revision.from_json(row.revision_json)
        return Response({**RevisionOutput(row).data, "namespace": revision.namespace,
                         "manifests": list(revision.manifests)})


class RevisionRollbackApi(APIView):
    """POST .../revisions/<n>/rollback/ {"comment"} — re-apply exactly revision n; 202, the worker records
    the new revision "rollback to n"."""

    permission_classes = [requires(policy.RELEASE_ROLLBACK)]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "RevisionRollbackInput"

        comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")

    @extend_schema(request=InputSerializer, responses={202: RevisionOutput})
    def post(self, request, name: str, env: str, number: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = deploy_services.revision_rollback_request(actor=Actor.of(request.user), service=name, environment=env,
                                                        number=number, comment=data.validated_data["comment"])
        return Response({"queued": True, "rollback_to": row.number, "image_tag": row.image_tag},
                        status=status.HTTP_202_ACCEPTED)


# --- credentials -------------------------------------------------------------------------------------------


class CredentialOutput(serializers.Serializer):
    environment = serializers.CharField()
    configured = serializers.BooleanField()
    kind = serializers.CharField(allow_null=True)
    host = serializers.CharField()
    context = serializers.CharField()
    secret_path = serializers.CharField()
    updated_by = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True)


class CredentialApi(APIView):
    """GET/PUT /api/environments/<env>/credentials/ — write-only secrets: GET says whether and which kind."""

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "CredentialInput"

        kind = serializers.ChoiceField(choices=CredentialKind.choices)
        kubeconfig = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=262144,
                                           default="", write_only=True)
        token = serializers.CharField(required=False, allow_blank=True, max_length=16384, default="",
                                      write_only=True)
        host = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
        ca_cert_pem = serializers.CharField(required=False, allow_blank=True, max_length=65536, default="",
                                            write_only=True)
        context = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        secret_path = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
        ca_path = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    def get_permissions(self):
        return _read_or_manage(self.request)

    @extend_schema(responses=CredentialOutput)
    def get(self, request, env: str):
        environment = environment_by_name(env)
        return Response(CredentialOutput(selectors.credential_summary(environment)).data)

    @extend_schema(request=InputSerializer, responses=CredentialOutput)
    def put(self, request, env: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credential = deploy_services.credential_set(actor=Actor.of(request.user), environment=env,
                                                    **data.validated_data)
        return Response(CredentialOutput(selectors.credential_summary(credential.environment)).data)
