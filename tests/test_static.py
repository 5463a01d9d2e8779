"""Production static files: `make run` collects them into hashed, compressed files."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_collectstatic_hashes_every_file_and_module_import(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(DEBUG="0", SECRET_KEY="static-test", ENV_FILE="/dev/null")
    script = ("import django, os\n"
              "os.environ['DJANGO_SETTINGS_MODULE'] = 'chatsite.settings'\n"
              "django.setup()\n"
              "from django.conf import settings\n"
              f"settings.STATIC_ROOT = {str(tmp_path)!r}\n"
              "from django.core.management import call_command\n"
              "call_command('collectstatic', '--noinput', verbosity=0)\n")
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)
    [app] = [p for p in tmp_path.glob("chat/app.*.js") if p.suffix == ".js"]
    imports = [line for line in app.read_text().splitlines() if line.startswith("import")]
    assert imports and all(re.search(r'\.[0-9a-f]{12}\.js"', line) for line in imports)
