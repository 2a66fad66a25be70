"""What a saved image contains: every file of every layer, its config and history, for
secrets and paths that must never ship; and the gzip-compressed size a registry stores."""

from __future__ import annotations

import json
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.container import Builder

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def ca_bundle_with_canary(dest: Path, canary: str) -> Path:
    """The host's CA bundle (needed behind the TLS-intercepting proxy) plus a marker line that
    must never show up in an image layer. PEM readers ignore text between certificates."""
    base = HOST_CA_BUNDLE.read_text() if HOST_CA_BUNDLE.exists() else ""
    dest.write_text(f"# {canary}\n{base}")
    return dest


@dataclass
class LayerScan:
    """What the saved image (every layer, plus config and history) contains."""

    paths: set[str]
    found: dict[str, list[str]]  # needle -> "layer:path" (or "config") where it occurs
    compressed_bytes: int
    # The config's build steps, oldest first (`empty_layer` marks the ones without a layer);
    # read from the image itself because `docker image inspect` has no history.
    history: list[dict]


def _layers(
    archive: tarfile.TarFile, paths: list[str]
) -> Iterator[tuple[str, int, tarfile.TarFile]]:
    """Each layer of a saved image: (name, gzip-compressed size, opened layer tar)."""
    for path in paths:
        fileobj = archive.extractfile(path)
        assert fileobj is not None, path
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        compressed = 0
        while chunk := fileobj.read(1 << 20):
            compressed += len(gz.compress(chunk))
        compressed += len(gz.flush())
        fileobj.seek(0)
        # r:* also reads layers a newer Docker saves compressed (OCI layout blobs)
        with tarfile.open(fileobj=fileobj, mode="r:*") as layer:
            yield path, compressed, layer


def scan_image(builder: Builder, image: str, needles: Sequence[str], workdir: Path) -> LayerScan:
    """Save the image and look through every file of every layer (a file deleted by a later layer
    still ships in the earlier one) for the needles; also measure the gzip-compressed layer size
    (what a registry stores and a node pulls)."""
    saved = workdir / "image.tar"
    builder.save(image, saved)
    encoded = [(n, n.encode()) for n in needles]
    found: dict[str, list[str]] = {n: [] for n in needles}
    paths: set[str] = set()
    compressed = 0
    try:
        with tarfile.open(saved) as archive:
            # manifest.json (docker-archive; also written by Docker's OCI-layout `save`) names the
            # config (env, labels, history) and the layers, whatever the file naming.
            manifest = json.loads(archive.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
            blob = archive.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
            history = json.loads(blob).get("history", [])
            for needle, raw in encoded:
                if raw in blob:
                    found[needle].append(f"config:{manifest['Config']}")
            layer_paths = list(manifest["Layers"])
            for layer_name, layer_compressed, layer in _layers(archive, layer_paths):
                compressed += layer_compressed
                for entry in layer:
                    path = "/" + entry.name.removeprefix("./").lstrip("/")
                    paths.add(path)
                    for needle, raw in encoded:
                        if raw in path.encode():
                            found[needle].append(f"{layer_name}:{path}")
                    if not entry.isfile():
                        continue
                    data = layer.extractfile(entry).read()  # type: ignore[union-attr]
                    for needle, raw in encoded:
                        if raw in data:
                            found[needle].append(f"{layer_name}:{path}")
    finally:
        saved.unlink(missing_ok=True)
    if not layer_paths or "/usr" not in paths:  # never pass vacuously
        raise RuntimeError(f"scanned nothing in {image}: layers {layer_paths}")
    return LayerScan(paths=paths, found=found, compressed_bytes=compressed, history=history)
