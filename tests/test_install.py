"""The light install: the optimizer, its profiles and the Avalanche plugin's module need torch alone.

The test builds an environment without the lab's packages (every installed distribution but the
``lab`` extra's, as links), runs Python in it without site-packages, and checks that the library
imports and steps while the command line names the missing extra in one line.
"""

import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAB_EXTRA = ["torchvision", "numpy", "scipy", "pandas", "pyarrow", "rich", "matplotlib", "mlxtend"]


def _top_level_names(distribution: str) -> set[str]:
    """The entries of site-packages that one installed distribution owns."""
    names = set()
    for file in metadata.distribution(distribution).files or []:
        parts = Path(file).parts
        if parts and parts[0] != ".." and not parts[0].endswith(".pth"):
            names.add(parts[0].removesuffix(".py") if len(parts) == 1 and parts[0].endswith(".py")
                      else parts[0])
    return names


@pytest.fixture(scope="module")
def torch_only_path(tmp_path_factory) -> Path:
    """A folder linking every entry of site-packages except the lab extra's packages."""
    site = Path(sysconfig.get_paths()["purelib"])
    excluded = set().union(*(_top_level_names(d) for d in LAB_EXTRA))
    excluded |= {name + ".py" for name in excluded}
    folder = tmp_path_factory.mktemp("torch-only")
    for entry in site.iterdir():
        if entry.name not in excluded and entry.stem not in excluded and not entry.name.endswith(".pth"):
            (folder / entry.name).symlink_to(entry)
    return folder


def _run(path: Path, code: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{SRC}:{path}", "PATH": "/usr/bin:/bin", "HOME": str(path)}
    return subprocess.run([sys.executable, "-S", "-W", "ignore", "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_optimizer_needs_torch_alone(torch_only_path):
    result = _run(torch_only_path, "\n".join([
        "import importlib.util",
        f"absent = [m for m in {LAB_EXTRA!r} if importlib.util.find_spec(m) is not None]",
        "assert not absent, absent",
        "import torch",
        "import metaplastic, metaplastic.avalanche",
        "from metaplastic import MetaplasticSGD",
        "model = torch.nn.Linear(4, 3)",
        "opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=10.0, flexibility='hybrid',",
        "                     generator=torch.Generator().manual_seed(0))",
        "before = model.weight.detach().clone()",
        "opt.consolidate()",
        "model(torch.randn(5, 4)).sum().backward()",
        "opt.step()",
        "assert not torch.equal(before, model.weight)",
        "print('stepped')"]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stepped" in result.stdout


@pytest.mark.slow
def test_the_command_line_names_the_missing_extra(torch_only_path):
    result = _run(torch_only_path, "import sys\nfrom metaplastic.cli import main\nsys.exit(main(['list']))")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'metaplastic[lab]'" in lines[0]
