"""Generates Python stubs from proto/ into a temporary folder and puts it on the import path."""

import pathlib
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]


def generate() -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="creditgate-py-"))
    protos = sorted(str(path) for path in (ROOT / "proto").rglob("*.proto"))
    include = str(pathlib.Path(protoc.__file__).parent / "_proto")
    code = protoc.main(
        ["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    )
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, str(out))
