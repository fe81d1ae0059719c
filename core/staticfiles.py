"""The platform's own static files (admin, console, API docs): versioned, gzip-compressed, no brotli.

whitenoise compresses with brotli whenever the `brotli` module is importable (the tenant-site origin
needs it), at brotli's slowest quality: on the ~40 MB of admin, Swagger and chart assets that turned
`collectstatic` from seconds into minutes (4m47s here under load). gzip alone serves operators well.
"""

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class GzipManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def create_compressor(self, **kwargs) -> Compressor:
        return Compressor(**{**kwargs, "use_brotli": False})
