"""Browser libraries, limited to the files the pages load.

STATICFILES_DIRS used to publish all of node_modules (315 files, 9.5 MB: sources, maps, package.json files).
This finder publishes only VENDOR_FILES, under the names the templates use, so `collectstatic` (production) and
WhiteNoise's finder mode (local) serve exactly these. Sources: node_modules (htmx, Chart.js; package.json) and
the drf-spectacular-sidecar package (Swagger UI for /api/docs/, so no CDN is needed: the CSP allows none).
A new library file goes here first.
"""
from datetime import datetime, timezone
from pathlib import Path

import drf_spectacular_sidecar
from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files import File

_SWAGGER = "drf_spectacular_sidecar/swagger-ui-dist/"
# URL path under STATIC_URL -> source: a path in node_modules, or sidecar/<path in the sidecar package static folder>
VENDOR_FILES = {
    "vendor/htmx.org/dist/htmx.min.js": "htmx.org/dist/htmx.min.js",
    "vendor/chart.js/dist/chart.umd.js": "chart.js/dist/chart.umd.js",
    # chart.umd.js names its source map (sourceMappingURL); the manifest storage rewrites that reference to the
    # map's hashed name, so the map must be collected too (browsers fetch it only with the developer tools open).
    "vendor/chart.js/dist/chart.umd.js.map": "chart.js/dist/chart.umd.js.map",
    # Swagger UI (SpectacularSwaggerSplitView with SWAGGER_UI_DIST = "SIDECAR"); the CSS names its map too.
    **{_SWAGGER + name: "sidecar/" + _SWAGGER + name for name in (
        "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "swagger-ui.css.map",
        "favicon-32x32.png")},
}


def source_path(source: str) -> Path:
    """Where a VENDOR_FILES source lives: the sidecar package's static folder, or node_modules."""
    if source.startswith("sidecar/"):
        return Path(drf_spectacular_sidecar.__file__).parent / "static" / source.removeprefix("sidecar/")
    return Path(getattr(settings, "ROLLGATE_NODE_MODULES", settings.BASE_DIR / "node_modules")) / source


class VendorFinder(BaseFinder):
    def check(self, **kwargs):
        # Where the files were collected already (the image ships staticfiles/ without node_modules), nothing is
        # missing; before that (collectstatic, or a local run serving from the finders) every file must be there.
        manifest = Path(getattr(settings, "STATIC_ROOT", None) or "/nonexistent") / "staticfiles.json"
        if not getattr(settings, "WHITENOISE_USE_FINDERS", False) and manifest.is_file():
            return []
        return [Error(f"static file {name} is missing ({source_path(source)})",
                      hint="run `make deps` (npm install, pip install -r requirements.txt)", id="rollgate.E001")
                for name, source in VENDOR_FILES.items() if not source_path(source).is_file()]

    def find(self, path, find_all=False, **kwargs):
        source = VENDOR_FILES.get(path)
        if source is None or not source_path(source).is_file():
            return [] if find_all else None
        found = str(source_path(source))
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for name, source in VENDOR_FILES.items():
            if source_path(source).is_file():
                yield name, _OneFile(name, source_path(source))


class _OneFile:
    """The storage collectstatic reads one listed file from: `name` is the file at `path`."""

    prefix = None

    def __init__(self, name: str, path: Path):
        self._name, self._path = name, path

    def _check(self, name: str) -> Path:
        if name != self._name:
            raise FileNotFoundError(name)
        return self._path

    def path(self, name):
        return str(self._check(name))

    def open(self, name, mode="rb"):
        return File(open(self._check(name), mode))

    def exists(self, name):
        return name == self._name

    def get_modified_time(self, name):
        return datetime.fromtimestamp(self._check(name).stat().st_mtime, tz=timezone.utc)
