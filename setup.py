"""Package list for the one `ramba` namespace: each top-level folder maps into it (see pyproject.toml)."""
from setuptools import find_packages, setup

FOLDERS = {"ramba": "ramba", "kernels": "ramba.kernels", "evals": "ramba.evals",
           "tasks": "ramba.tasks", "reports": "ramba.reports"}


def namespace_packages() -> list[str]:
    packages = []
    for folder, name in FOLDERS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages


setup(packages=namespace_packages())
