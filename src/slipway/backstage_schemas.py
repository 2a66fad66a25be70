"""Refresh tests/schemas/backstage/: Backstage's entity JSON schemas, from @backstage/catalog-model.

    python -m slipway backstage-schemas [VERSION]      (needs npm and node)

The npm package ships its schemas compiled into JavaScript modules; this script packs the
package with npm, loads each schema module with node and writes it back out as JSON. The
template's tests validate every rendered catalog-info.yaml against these files (Apache-2.0,
copyright The Backstage Authors), so CI needs neither npm nor the network.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "schemas" / "backstage"
DEFAULT_VERSION = "1.10.1"
SCHEMAS = [
    "Entity",
    "EntityEnvelope",
    "EntityMeta",
    "shared/common",
    "kinds/Component.v1alpha1",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway backstage-schemas", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "version", nargs="?", default=DEFAULT_VERSION, help="of @backstage/catalog-model"
    )
    version = parser.parse_args(argv).version
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        packed = subprocess.run(
            ["npm", "pack", f"@backstage/catalog-model@{version}", "--silent"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        with tarfile.open(work / packed) as archive:
            archive.extractall(work, filter="data")
        dist = work / "package" / "dist" / "schema"
        OUT.mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            module = dist / f"{name}.schema.json.cjs.js"
            script = (
                f"process.stdout.write(JSON.stringify(require({json.dumps(str(module))}).default))"
            )
            schema = json.loads(
                subprocess.run(
                    ["node", "-e", script], capture_output=True, text=True, check=True
                ).stdout
            )
            target = OUT / f"{Path(name).name}.schema.json"
            target.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)} ($id {schema.get('$id')})")
        (OUT / "VERSION").write_text(f"@backstage/catalog-model {version}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
