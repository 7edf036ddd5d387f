"""Browser libraries from node_modules, limited to the files the pages load.

STATICFILES_DIRS used to publish all of node_modules (315 files, 9.5 MB: sources, maps, package.json files).
This finder publishes only VENDOR_FILES, under the same `vendor/...` names the templates use, so `collectstatic`
(production) and WhiteNoise's finder mode (local) serve exactly these. A new library file goes here first.
"""
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

# URL path under STATIC_URL -> path inside node_modules
VENDOR_FILES = {
    "vendor/htmx.org/dist/htmx.min.js": "htmx.org/dist/htmx.min.js",
    "vendor/chart.js/dist/chart.umd.js": "chart.js/dist/chart.umd.js",
    # chart.umd.js names its source map (sourceMappingURL); the manifest storage rewrites that reference to the
    # map's hashed name, so the map must be collected too (browsers fetch it only with the developer tools open).
    "vendor/chart.js/dist/chart.umd.js.map": "chart.js/dist/chart.umd.js.map",
}


def _root() -> Path:
    return Path(getattr(settings, "ROLLGATE_NODE_MODULES", settings.BASE_DIR / "node_modules"))


class _VendorStorage(FileSystemStorage):
    """node_modules, seen through the vendor/ prefix; collectstatic copies from here."""

    def __init__(self):
        super().__init__(location=str(_root()))
        self.prefix = None


class VendorFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = _VendorStorage()

    def check(self, **kwargs):
        missing = [name for name, source in VENDOR_FILES.items() if not (_root() / source).is_file()]
        return [Error(f"static file {name} is missing from {_root()}", hint="run `npm install` (make deps does)",
                      id="rollgate.E001") for name in missing]

    def find(self, path, find_all=False, **kwargs):
        source = VENDOR_FILES.get(path)
        if source is None or not (_root() / source).is_file():
            return [] if find_all else None
        found = str(_root() / source)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for name, source in VENDOR_FILES.items():
            if (_root() / source).is_file():
                yield name, _NamedStorage(self.storage, name, source)


class _NamedStorage:
    """collectstatic asks the storage for `path` (the name we list): answer with the node_modules file."""

    def __init__(self, storage: FileSystemStorage, name: str, source: str):
        self._storage, self._name, self._source = storage, name, source
        self.prefix = None

    def _map(self, path: str) -> str:
        return self._source if path == self._name else path

    def path(self, name):
        return self._storage.path(self._map(name))

    def open(self, name, mode="rb"):
        return self._storage.open(self._map(name), mode)

    def get_modified_time(self, name):
        return self._storage.get_modified_time(self._map(name))

    def exists(self, name):
        return self._storage.exists(self._map(name))
