"""Regenerates the committed protobuf / gRPC code in ``tz_client/_proto`` from ``proto/``.

Usage: ``.venv/bin/python proto/generate.py [OUT_DIR]`` (default: ``tz_client/_proto``).
Needs ``grpcio-tools``. The generated modules import each other as
``tz_client._proto.torchzero_service.v1.*`` so they need nothing on ``sys.path``.
``tests/service/test_proto_sync.py`` fails when the committed code no longer matches.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
PACKAGE = "tz_client._proto"


def proto_files() -> list[Path]:
    return sorted(ROOT.rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Writes the generated modules under ``out``; returns their paths."""
    from grpc_tools import protoc
    import grpc_tools

    out.mkdir(parents=True, exist_ok=True)
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    files = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    written = []
    for py in sorted(out.rglob("*.py*")):
        if py.suffix not in (".py", ".pyi"):
            continue
        text = py.read_text()
        fixed = re.sub(r"^from torchzero_service\.", f"from {PACKAGE}.torchzero_service.", text, flags=re.M)
        if fixed != text:
            py.write_text(fixed)
        written.append(py)
    for d in [out, *[p for p in out.rglob("*") if p.is_dir() and p.name != "__pycache__"]]:
        init = d / "__init__.py"
        if not init.exists():
            init.write_text("")
            written.append(init)
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tz_client" / "_proto"
    for p in generate(out):
        print(p)


if __name__ == "__main__":
    main()
