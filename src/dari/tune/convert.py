"""Turning a trained adapter into files llama.cpp serves, with llama.cpp's own converters
(`convert_lora_to_gguf.py`, `convert_hf_to_gguf.py`). They ship in the llama-cpp-python source
distribution, not in its wheel; `make tune-tools` (or the two commands in docs/en/fine-tuning.md)
unpacks them at install time into `<venv>/share/dari/llama.cpp`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dari.errors import BackendError, ConfigError

LORA_SCRIPT = "convert_lora_to_gguf.py"
MODEL_SCRIPT = "convert_hf_to_gguf.py"
INSTALL_HINT = (
    "run `make tune-tools`, or: pip download llama-cpp-python==0.3.36 --no-deps --no-binary :all: "
    "-d /tmp/l && tar xzf /tmp/l/llama_cpp_python-0.3.36.tar.gz -C /tmp/l && "
    "cp -r /tmp/l/llama_cpp_python-0.3.36/vendor/llama.cpp "
    f"{Path(sys.prefix) / 'share' / 'dari' / 'llama.cpp'}"
)


def tools_dir(configured: str = "") -> Path:
    """Where the converters are: `tune.tools_dir`, else `<sys.prefix>/share/dari/llama.cpp`."""
    folder = (
        Path(configured).expanduser()
        if configured
        else Path(sys.prefix) / "share" / "dari" / "llama.cpp"
    )
    if not (folder / LORA_SCRIPT).exists() or not (folder / "conversion").is_dir():
        raise ConfigError(f"llama.cpp's GGUF converters are not in {folder}", INSTALL_HINT)
    return folder


def lora_to_gguf(adapter: Path, base_config: Path, output: Path, tools: Path) -> Path:
    """The peft adapter folder → one LoRA GGUF (f16) that llama.cpp loads over the base file."""
    adapter, base_config, output = adapter.resolve(), base_config.resolve(), output.resolve()
    return _run(
        tools / LORA_SCRIPT,
        ["--base", str(base_config), "--outtype", "f16", "--outfile", str(output), str(adapter)],
        output,
    )


def model_to_gguf(folder: Path, output: Path, tools: Path) -> Path:
    """A full (merged) Hugging Face model folder → one f16 GGUF."""
    folder, output = folder.resolve(), output.resolve()  # the converter runs in its own folder
    return _run(
        tools / MODEL_SCRIPT, ["--outtype", "f16", "--outfile", str(output), str(folder)], output
    )


def _run(script: Path, args: list[str], output: Path) -> Path:
    tmp = output.with_name(output.name + ".part")
    args = [a if a != str(output) else str(tmp) for a in args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the converter uses the gguf-py that came with it
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=script.parent,
        )
    except OSError as exc:
        raise BackendError(f"cannot run {script.name}: {exc.strerror}", INSTALL_HINT) from exc
    if done.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise BackendError(
            f"{script.name} failed (exit {done.returncode}): {tail}",
            "the adapter and base config are kept in the run folder; fix the cause and run "
            "`dari tune convert RUN` again",
        )
    os.replace(tmp, output)
    return output
