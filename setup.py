"""The optional C speed-ups of monitor.text.fold, monitor.dedup.signature, the
matcher's scan and hits (monitor.match) and the extractor's block classifier
(monitor.extract.model); everything else is in pyproject.toml.

`optional=True`: where no C compiler is found the install goes on and monitor folds text
with str.translate, signs texts with numpy and scans with the ahocorasick-rs automaton
instead, to the same results, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor._fold", ["monitor/_fold.c"], optional=True),
                   Extension("monitor.dedup._minhash", ["monitor/dedup/_minhash.c"], optional=True),
                   Extension("monitor.match._scan", ["monitor/match/_scan.c"], optional=True),
                   Extension("monitor.match._explain", ["monitor/match/_explain.c"], optional=True),
                   Extension("monitor.extract._forest", ["monitor/extract/_forest.c"],
                             optional=True)])
