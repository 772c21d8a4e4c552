"""Build hook: compiles the native backend's C runtime (probes.cext._runtime) with cffi.

Everything else about the package is in pyproject.toml. A machine without a C
compiler still installs probes: the extension is then skipped with a warning,
and the native backend reports that its runtime is unavailable.
"""

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the C runtime cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - no compiler, no headers...
            self.warn(f"probes: the native backend's C runtime was not built ({e}); "
                      f"the wasm backend is unaffected")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self.warn(f"probes: could not build {ext.name} ({e}); the native backend will "
                      f"be unavailable")


setup(
    cffi_modules=["cext/build_runtime.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
