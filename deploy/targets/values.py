"""Helm-style values for an agent service: base values.yaml deep-merged with values-<env>.yaml.

The release decides the image tag, so it overrides ``image.tag`` after the merge. Every layer is
checked on its own first (so the error names the file that holds the bad key), then the merged
result is checked for completeness. Errors name the path of the bad key and the rule it broke.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import yaml

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
QUOTA_RESOURCES = (
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "pods",
    "services",
    "configmaps",
    "secrets",
)

# Kubernetes resource.Quantity grammar: a signed decimal number with an optional binary (Ki..Ei),
# decimal (m, k, M..E) or exponent suffix.
_QUANTITY = re.compile(r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIX_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS1123_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(|[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")


class ValuesError(ValueError):
    """A values document broke a rule. ``path`` is the dotted path of the bad key."""

    def __init__(self, path: str, rule: str, source: str | None = None):
        self.path = path
        self.rule = rule
        self.source = source
        where = f"{source}: {path}" if source else path
        super().__init__(f"{where}: {rule}")


def parse_quantity(text: Any) -> Decimal:
    """Parse a Kubernetes quantity ("500m", "1Gi", 2) into a Decimal; ValueError when malformed."""
    if isinstance(text, bool):
        raise ValueError("not a quantity")
    if isinstance(text, (int, float)):
        return Decimal(str(text))
    if not isinstance(text, str):
        raise ValueError("not a quantity")
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError("not a quantity")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees a number
        raise ValueError("not a quantity") from exc
    suffix = match["suffix"]
    if suffix and suffix[0] in "eE":
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX_FACTORS[suffix]


class _AliasRefused(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: "billion laughs" (a 334-byte file became a 78 MB answer)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _AliasRefused(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


def load_values_yaml(text: str, *, source: str) -> dict:
    """Read one values file. An empty file is an empty mapping; anything else must be a mapping."""
    try:
        document = yaml.load(text, Loader=_NoAliasLoader) if text else None  # noqa: S506 (a SafeLoader)
    except _AliasRefused as exc:
        raise ValuesError("(root)", f"line {exc.line}: YAML aliases (*name) are not accepted: they let a few "
                                    f"bytes expand to gigabytes; write the values out", source) from None
    except RecursionError:
        raise ValueError(f"{source}: document: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        raise ValueError(f"{source}: {where}: not valid YAML") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ValuesError("(root)", "must be a mapping of keys to values", source)
    return document


def deep_merge(base: Mapping, overlay: Mapping) -> dict:
    """Helm merge: mappings merge recursively, anything else (lists included) is replaced,
    and an explicit null in the overlay removes the key."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_values(
    base: Mapping,
    overlay: Mapping,
    *,
    image_tag: str,
    base_source: str = "values.yaml",
    overlay_source: str = "values-<env>.yaml",
) -> dict:
    """Merge a service's values with its environment values and pin the release's image tag.

    Raises ValuesError naming the file and the path of the first bad key.
    """
    validate_values(base, source=base_source, partial=True)
    validate_values(overlay, source=overlay_source, partial=True)
    merged = deep_merge(base, overlay)
    merged.setdefault("image", {})
    merged["image"]["tag"] = image_tag
    validate_values(merged, source="merged values", partial=False)
    return merged


def validate_values(values: Any, *, source: str | None = None, partial: bool = False) -> None:
    """Check a values document. ``partial`` allows required keys to be missing (a single layer)."""
    _Validator(source, partial).check_root(values)


class _Validator:
    def __init__(self, source: str | None, partial: bool):
        self.source = source
        self.partial = partial

    def fail(self, path: str, rule: str) -> None:
        raise ValuesError(path, rule, self.source)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping (got {type(value).__name__})")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    child = f"{path}.{key}" if path else str(key)
                    self.fail(child, f"unknown key; allowed here: {', '.join(allowed)}")
        return value

    def require(self, mapping: dict, key: str, path: str) -> bool:
        if key in mapping and mapping[key] is not None:
            return True
        if not self.partial:
            self.fail(f"{path}.{key}" if path else key, "is required")
        return False

    def string(self, value: Any, path: str, pattern: re.Pattern | None = None, rule: str = "") -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"must be a non-empty string (got {value!r})")
        if pattern is not None and not pattern.match(value):
            self.fail(path, f"{rule} (got {value!r})")
        return value

    def quantity(self, value: Any, path: str) -> Decimal:
        try:
            amount = parse_quantity(value)
        except ValueError:
            self.fail(path, f'must be a Kubernetes quantity such as "500m", "2", "512Mi" or "2Gi" (got {value!r})')
        if amount < 0:
            self.fail(path, f"must not be negative (got {value!r})")
        return amount

    def check_root(self, values: Any) -> None:
        allowed = (
            "image", "replicaCount", "resources", "env", "service", "nodeSelector",
            "configMap", "secretRefs", "resourceQuota", "readinessProbe", "imagePullSecrets", "securityContext",
        )
        values = self.mapping(values, "", allowed)
        if self.require(values, "image", ""):
            self.check_image(values["image"])
        if self.require(values, "replicaCount", ""):
            count = values["replicaCount"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                self.fail("replicaCount", f"must be a non-negative integer (got {count!r})")
        if values.get("resources") is not None:
            self.check_resources(values["resources"])
        if values.get("env") is not None:
            self.check_env(values["env"])
        if self.require(values, "service", ""):
            self.check_service(values["service"])
        if values.get("nodeSelector") is not None:
            selector = self.mapping(values["nodeSelector"], "nodeSelector", None)
            for key, label in selector.items():
                self.string(key, f"nodeSelector.{key}", _LABEL_KEY, "must be a label key")
                if not isinstance(label, str) or not _LABEL_VALUE.match(label):
                    self.fail(f"nodeSelector.{key}", f"must be a label value string (got {label!r})")
        if values.get("configMap") is not None:
            config = self.mapping(values["configMap"], "configMap", ("data",))
            data = self.mapping(config.get("data") or {}, "configMap.data", None)
            for key, item in data.items():
                self.string(key, f"configMap.data.{key}", _CONFIG_KEY, "keys may hold only letters, digits, '-', '_' and '.'")
                if not isinstance(item, str):
                    self.fail(f"configMap.data.{key}", f"must be a string (quote numbers and booleans) (got {item!r})")
        if values.get("secretRefs") is not None:
            refs = values["secretRefs"]
            if not isinstance(refs, list):
                self.fail("secretRefs", "must be a list of existing Secret names")
            for index, name in enumerate(refs):
                self.string(name, f"secretRefs[{index}]", _DNS1123_NAME, "must be a Secret name (lower-case DNS-1123)")
        if values.get("imagePullSecrets") is not None:
            pulls = values["imagePullSecrets"]
            if not isinstance(pulls, list):
                self.fail("imagePullSecrets", "must be a list of existing Secret names (registry credentials)")
            for index, name in enumerate(pulls):
                self.string(name, f"imagePullSecrets[{index}]", _DNS1123_NAME,
                            "must be a Secret name (lower-case DNS-1123)")
        if values.get("securityContext") is not None:
            security = self.mapping(values["securityContext"], "securityContext",
                                    ("runAsUser", "runAsGroup", "fsGroup", "readOnlyRootFilesystem"))
            for key in ("runAsUser", "runAsGroup", "fsGroup"):
                number = security.get(key)
                if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number <= 0):
                    self.fail(f"securityContext.{key}", f"must be a positive id: the restricted pod security level "
                                                        f"forbids running as root (got {number!r})")
            if security.get("readOnlyRootFilesystem") not in (None, True, False):
                self.fail("securityContext.readOnlyRootFilesystem", "must be true or false")
        if values.get("resourceQuota") is not None:
            quota = self.mapping(values["resourceQuota"], "resourceQuota", QUOTA_RESOURCES)
            for key, amount in quota.items():
                self.quantity(amount, f"resourceQuota.{key}")
        if values.get("readinessProbe") is not None:
            probe = self.mapping(values["readinessProbe"], "readinessProbe", ("path", "port"))
            if probe.get("path") is not None and not str(probe["path"]).startswith("/"):
                self.fail("readinessProbe.path", f"must start with '/' (got {probe['path']!r})")
            if probe.get("port") is not None:
                self.port(probe["port"], "readinessProbe.port")

    def check_image(self, image: Any) -> None:
        image = self.mapping(image, "image", ("repository", "tag", "pullPolicy"))
        if self.require(image, "repository", "image"):
            self.string(image["repository"], "image.repository", _IMAGE_REPOSITORY, "must be an image repository like registry.example.com/agent/agent-core")
        if self.require(image, "tag", "image"):
            self.string(image["tag"], "image.tag", _IMAGE_TAG, "must be an image tag (letters, digits, '_', '.', '-'; at most 128)")
        if image.get("pullPolicy") is not None and image["pullPolicy"] not in ("Always", "IfNotPresent", "Never"):
            self.fail("image.pullPolicy", f"must be one of Always, IfNotPresent, Never (got {image['pullPolicy']!r})")

    def check_resources(self, resources: Any) -> None:
        resources = self.mapping(resources, "resources", ("requests", "limits"))
        amounts: dict[tuple[str, str], Decimal] = {}
        for section in ("requests", "limits"):
            if resources.get(section) is None:
                continue
            block = self.mapping(resources[section], f"resources.{section}", ("cpu", "memory"))
            for name, amount in block.items():
                amounts[(section, name)] = self.quantity(amount, f"resources.{section}.{name}")
        for name in ("cpu", "memory"):
            request, limit = amounts.get(("requests", name)), amounts.get(("limits", name))
            if request is not None and limit is not None and request > limit and not self.partial:
                self.fail(f"resources.requests.{name}", f"must not exceed resources.limits.{name}")

    def check_env(self, env: Any) -> None:
        if not isinstance(env, list):
            self.fail("env", "must be a list of {name, value} entries")
        seen: set[str] = set()
        for index, entry in enumerate(env):
            path = f"env[{index}]"
            entry = self.mapping(entry, path, ("name", "value"))
            if "name" not in entry:
                self.fail(f"{path}.name", "is required")
            name = self.string(entry["name"], f"{path}.name", _ENV_NAME, "must be a valid environment variable name")
            if name in seen:
                self.fail(f"{path}.name", f"duplicates an earlier entry named {name!r}")
            seen.add(name)
            if not isinstance(entry.get("value", ""), str):
                self.fail(f"{path}.value", f"must be a string (quote numbers and booleans) (got {entry['value']!r})")

    def check_service(self, service: Any) -> None:
        service = self.mapping(service, "service", ("type", "port"))
        if service.get("type") is not None and service["type"] not in SERVICE_TYPES:
            self.fail("service.type", f"must be one of {', '.join(SERVICE_TYPES)} (got {service['type']!r})")
        if self.require(service, "port", "service"):
            self.port(service["port"], "service.port")

    def port(self, port: Any, path: str) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            self.fail(path, f"must be a port number from 1 to 65535 (got {port!r})")
