from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed static files; `import "./x.js"` in our ES modules is rewritten to
    the hashed names too, so every module can be cached forever."""

    support_js_module_import_aggregation = True
