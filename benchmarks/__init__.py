"""leadflow's benchmarks: measured speed as a ratio against a baseline taken in the same run.

Run ``python -m benchmarks --help``. Each benchmark lives in its own module and is listed
in ``benchmarks.registry``; ``benchmarks.framework`` holds the shapes they share.
"""
