"""The optional C speed-ups of monitor.text.fold and monitor.dedup.signature; everything
else is in pyproject.toml.

`optional=True`: where no C compiler is found the install goes on and monitor folds text
with str.translate and signs texts with numpy instead, to the same results, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor._fold", ["monitor/_fold.c"], optional=True),
                   Extension("monitor._minhash", ["monitor/_minhash.c"], optional=True)])
