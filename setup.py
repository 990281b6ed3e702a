from setuptools import find_packages, setup

setup(
    name="xiref",
    version="0.1.0",
    description="NumPy reference implementation of XiNet: online training and pruning of deep-RL networks",
    packages=find_packages(include=["xiref", "xiref.*"]),
    python_requires=">=3.10",
    # lower bound: the oldest release known to work; upper bound: the next major release (installed on
    # the development machine: numpy 2.4, autograd 1.9, mujoco 4.0, gymnasium 1.4, matplotlib 3.11, pytest 9.2)
    install_requires=["numpy>=1.26,<3", "autograd>=1.7,<2", "mujoco>=3.1,<5", "gymnasium[mujoco]>=1.0,<2",
                      "matplotlib>=3.7,<4"],
    extras_require={"test": ["pytest>=7,<10"], "cluster": ["ray>=2.40,<3"]},
    entry_points={"console_scripts": ["xiref=xiref.cli:main"]},
)
