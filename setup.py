"""Install upstream_merged; a regular install also drops upstream_merged.pth into site-packages."""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HOOK_PTH = "upstream_merged.pth"
HOOK_LINE = 'import importlib.util as _u; _u.find_spec("upstream_merged") and __import__("upstream_merged._hook")\n'


class BuildPyWithHook(build_py):
    """Copies the .pth hook into the build root so it lands at the top of site-packages."""

    def run(self):
        super().run()
        Path(self.build_lib, HOOK_PTH).write_text(HOOK_LINE)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib, HOOK_PTH))]


setup(
    name="upstream_merged",
    version="0.1.0",
    description="Merged and fused speech/music encoders as s3prl (SUPERB) upstreams",
    long_description=Path(__file__).with_name("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["upstream_merged", "upstream_merged.*"]),
    package_data={"upstream_merged": ["downstream/*/*.yaml", "recipes/*.yaml",
                                    "pretrained/SHA256SUMS", "pretrained/*/*.json", "pretrained/*/*.safetensors"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.6,<2.9",
        "torchaudio>=2.6,<2.9",
        "s3prl==0.4.18",
        "transformers>=4.48,<5",
        "huggingface_hub<1",
        "tensorboardX",
        "catalyst==22.4",
        "librosa",
        "pandas",
        "editdistance",
        "soundfile>=0.12",  # its wheels bundle a libsndfile that decodes MP3 / Ogg (calibration.datasets)
        "scipy",
        "safetensors",
        "pyyaml",
        "tqdm",
        "pydantic>=2,<3",
        "matplotlib",
    ],
    # calibration.datasets: Parquet datasets are streamed by datasets and decoded with soundfile (no torchcodec);
    # datasets >= 5.1 needs huggingface_hub >= 1, which transformers < 5 excludes, so this resolves to 5.0.x
    extras_require={"test": ["pytest", "psutil"], "calibration-data": ["datasets>=3,<6"]},
    entry_points={"console_scripts": ["upstream-merged=upstream_merged.__main__:main"]},
    cmdclass={"build_py": BuildPyWithHook},
)
