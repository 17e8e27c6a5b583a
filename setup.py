"""The optional C speed-up of monitor.text.fold; everything else is in pyproject.toml.

`optional=True`: where no C compiler is found the install goes on and monitor folds text
with str.translate instead, to the same result, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor._fold", ["monitor/_fold.c"], optional=True)])
