"""The package as a user gets it: `pip install ./python`, standard library only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import support

PACKAGE = Path(support.REPO) / "python"

# Run with -S -E: no site-packages and no PYTHONPATH, so only the standard library (and the path given) exists.
CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import smcp, smcp.canonical
assert smcp.__file__.startswith(sys.argv[1]), smcp.__file__
third_party = [
    m for m in sys.modules if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] not in ("smcp", "__main__")
]
assert not third_party, third_party
client = smcp.Client("http://127.0.0.1:9", client_id="a", client_secret="c" * 16, server_key="s" * 16)
envelope = client.build_envelope("batch_sum", {"numbers": [1, 6.0]})
assert len(envelope.fields["signature"]) == 64 and b'"numbers":[1,6.0]' in envelope.body
try:
    smcp.Client("http://127.0.0.1:9", client_id="a", client_secret="ed25519-secret:" + "A" * 43, server_key="ed25519:" + "A" * 43)
except smcp.SmcpUsageError as error:
    print(error)
print(smcp.__version__)
"""


def test_pip_install_gives_a_stdlib_only_package(tmp_path: Path) -> None:
    source = tmp_path / "source"
    # A copy, so the build's egg-info and build/ folders never land in the repository.
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "smcp" / "py.typed").exists()
    metadata = next(target.glob("smcp-*.dist-info")).joinpath("METADATA").read_text()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and all("extra ==" in line for line in requires), requires  # nothing required by default
    assert 'Requires-Dist: cryptography>=3.0; extra == "ed25519"' in requires
    run = subprocess.run([sys.executable, "-S", "-E", "-c", CHECK, str(target)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "pip install 'smcp[ed25519]'" in run.stdout and run.stdout.strip().endswith("0.1.0")
