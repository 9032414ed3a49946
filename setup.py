"""The optional native replay kernel; everything else is declared in pyproject.toml.

``hallmark.audit._replay_kernel`` (``native/_replay_kernel.c``, linked with OpenSSL's
libcrypto) speeds up ``hallmark audit verify``. It is optional: without a C compiler or the
OpenSSL headers the install goes on without it and replay runs its pure-Python path (the
one the Lambda layer ships). An editable install (``pip install -e .``) builds it in place,
next to ``replay.py``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hallmark.audit._replay_kernel",
            sources=["native/_replay_kernel.c"],
            libraries=["crypto"],
            optional=True,
        )
    ]
)
