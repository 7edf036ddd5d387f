# Deploy records live in pipelines/deploy_models.py; other pipeline models are merged in here.
from pipelines.deploy_models import *  # noqa: F401,F403
from pipelines.deploy_models import (  # noqa: F401
    CredentialKind,
    DeployRevision,
    DeployRevisionStatus,
    EnvironmentValues,
    ServiceValues,
    TargetCredential,
)
