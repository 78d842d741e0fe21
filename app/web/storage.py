"""Static files with content hashes in their names, ES module imports included.

Django's ManifestStaticFilesStorage renames every file to name.<hash>.ext and rewrites CSS url()s; with
`support_js_module_import_aggregation` it also rewrites `import ... from "./x.js"` between our modules. The page
then loads a consistent set of modules after every deploy, and Apache may cache /static/ for as long as it likes,
with no build step of our own.
"""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage


class HashedStaticFilesStorage(ManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
