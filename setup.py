"""One ament_python package (``distillmatch_ros``) that is also a plain pip package.

``pip install .`` installs both Python packages and the ``distillmatch`` CLI on a
machine without ROS; ``colcon build`` installs the same plus the ROS data files
(launch/, config/, the ament index marker and package.xml).
"""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "distillmatch_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    scope = {}
    with open(os.path.join(HERE, "distillmatch_core", "version.py"), encoding="utf-8") as fh:
        exec(fh.read(), scope)
    return scope["__version__"]


setup(
    name=PACKAGE,
    version=read_version(),
    description="RGB-thermal correspondences, homography and pose with DistillMatch (ROS 2 + pure Python)",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read()
    if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["distillmatch_core", "distillmatch_core.*", "distillmatch_ros",
                                    "distillmatch_ros.*"]),
    package_data={"distillmatch_core": ["assets/*", "assets/**/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml")),
    ],
    install_requires=[
        "numpy>=1.23",
        "torch>=2.1,<3",
        "timm>=0.9.16",
        "kornia>=0.7",
        "opencv-python-headless>=4.8",
        "onnx>=1.15",
        "onnxruntime>=1.17",
        "rosbags>=0.10",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
        "h5py>=3.8",
        "setuptools",
    ],
    extras_require={
        "test": ["pytest>=7"],
        "tensorrt": ["tensorrt>=8.6"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "distillmatch = distillmatch_core.cli.main:main",
            "matcher_node = distillmatch_ros.matcher_node:main",
        ],
    },
)
