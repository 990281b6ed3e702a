from setuptools import find_packages, setup

setup(
    name="xiref",
    version="0.1.0",
    description="NumPy reference implementation of XiNet: online training and pruning of deep-RL networks",
    packages=find_packages(include=["xiref", "xiref.*"]),
    python_requires=">=3.10",
    install_requires=["numpy>=1.26", "autograd>=1.7", "mujoco>=3.1", "gymnasium[mujoco]>=1.0", "matplotlib>=3.7"],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["xiref=xiref.cli:main"]},
)
