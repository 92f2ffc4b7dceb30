"""README's two commands are the ones CI and a newcomer run."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_commands_match_ci():
    readme = (REPO / "README.md").read_text()
    blocks = _bash_blocks(readme)
    main_job = next(b for b in blocks if "neurorecord run" in b)
    test_cmd = next(b for b in blocks if b.endswith("pytest"))
    assert main_job.startswith("pip install torch==2.13.0 && pip install -e .")
    assert "protocols/digits.yaml" in main_job and (REPO / "protocols" / "digits.yaml").is_file()
    ci = (REPO / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert ci_lines[-1] == test_cmd
    assert ci.index("torch==2.13.0") < ci.index("pytest")


def test_default_protocol_in_repo_is_the_embedded_one():
    import neurorecord

    assert (REPO / "protocols" / "digits.yaml").read_text() == neurorecord.default_protocol_path().read_text()
